//! In-memory copies of read models (the pipeline board, member pages) against a real
//! PostgreSQL: kept while their projections do not commit, dropped when one does (its
//! checkpoint's NOTIFY), when this process says so, and when the LISTEN connection is lost;
//! and gone from memory once they can no longer be served.
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "support/clinic.rs"]
mod support;

use std::time::{Duration, Instant};

use clinic_domain::values::Stage;
use clinic_infra::clinic::ClinicId;
use clinic_infra::projections::ProjectionName;
use clinic_infra::read_models::copies::READ_WAIT;
use clinic_infra::read_models::copies::SWEEP_EVERY;
use clinic_infra::read_models::{
    BoardCache, Engagement, MemberFilter, MemberPages, PageRequest, PipelineBoard,
};
use sqlx::{Connection, PgConnection, PgPool};
use support::{catch_up_all, member, Clinic, T0};

/// Long enough that no copy expires during a test: only a commit, or a lost connection, can
/// make the cache read again.
const FOREVER: Duration = Duration::from_secs(3600);

/// How long a NOTIFY may take to arrive on a loaded machine.
const DELIVERY: Duration = Duration::from_secs(20);

fn referred(board: &PipelineBoard) -> i64 {
    board
        .stages
        .iter()
        .find(|s| s.stage == Stage::Referred)
        .unwrap()
        .count
}

/// Waits until copies are kept: their LISTEN connection is up (before that, every read goes
/// to the tables).
async fn until_listening(is_listening: impl Fn() -> bool) {
    let deadline = Instant::now() + DELIVERY;
    while !is_listening() {
        assert!(
            Instant::now() < deadline,
            "the copies never started listening"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A board cache whose LISTEN connection is up.
async fn listening_cache(pool: &PgPool, max_age: Duration) -> BoardCache {
    let cache = BoardCache::new(pool);
    cache.set_max_age(max_age);
    until_listening(|| cache.is_listening()).await;
    cache
}

/// Changes the referred count behind the projection's back: no checkpoint moves, so nothing
/// announces it.
async fn set_referred_by_hand(pool: &PgPool, clinic: &ClinicId, members: i64) {
    sqlx::query("UPDATE pipeline_counts SET members = $2 WHERE clinic = $1 AND stage = 'referred'")
        .bind(clinic.as_str())
        .bind(members)
        .execute(pool)
        .await
        .unwrap();
}

/// Reads through `cache` until `done` holds, at most [`DELIVERY`].
async fn board_until(
    cache: &BoardCache,
    clinic: &ClinicId,
    done: impl Fn(&PipelineBoard) -> bool,
) -> PipelineBoard {
    let deadline = Instant::now() + DELIVERY;
    loop {
        let board = cache.board(clinic).await.unwrap();
        if done(&board) {
            return board;
        }
        assert!(
            Instant::now() < deadline,
            "the cache kept {board:?} past {DELIVERY:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two clinics with one referral each, folded into the board.
async fn two_clinics(pool: &PgPool) -> (Clinic, Clinic) {
    let mut north = Clinic::new(pool, "north");
    north.refer(member(1), "Ann Archer", T0).await;
    let mut south = Clinic::new(pool, "south");
    south.refer(member(2), "Bob Baker", T0).await;
    catch_up_all(pool).await;
    (north, south)
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn each_clinics_board_is_kept_until_the_projection_commits(pool: PgPool) {
    let (mut north, south) = two_clinics(&pool).await;
    let cache = listening_cache(&pool, FOREVER).await;
    assert_eq!(referred(&cache.board(&north.id).await.unwrap()), 1);
    assert_eq!(referred(&cache.board(&south.id).await.unwrap()), 1);

    // Kept: a change no commit announces is not seen, and each clinic keeps its own board.
    set_referred_by_hand(&pool, &north.id, 40).await;
    set_referred_by_hand(&pool, &south.id, 50).await;
    assert_eq!(referred(&cache.board(&north.id).await.unwrap()), 1);
    assert_eq!(referred(&cache.board(&south.id).await.unwrap()), 1);

    // A commit of the projection drops the copies: the next reads show the table.
    north.refer(member(3), "Cy Cole", T0).await;
    catch_up_all(&pool).await;
    let board = board_until(&cache, &north.id, |b| referred(b) != 1).await;
    assert_eq!(referred(&board), 41, "the hand-set 40 and the new referral");
    assert_eq!(referred(&cache.board(&south.id).await.unwrap()), 50);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_commit_this_process_saw_drops_the_copy_at_once(pool: PgPool) {
    let (north, _) = two_clinics(&pool).await;
    let cache = listening_cache(&pool, FOREVER).await;
    assert_eq!(referred(&cache.board(&north.id).await.unwrap()), 1);
    set_referred_by_hand(&pool, &north.id, 7).await;
    assert_eq!(referred(&cache.board(&north.id).await.unwrap()), 1);

    // As after a mutation's read-your-writes wait: no NOTIFY comes, the next read is fresh.
    cache.committed(&[ProjectionName::Members]);
    assert_eq!(referred(&cache.board(&north.id).await.unwrap()), 7);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_lost_listen_connection_drops_the_copy(pool: PgPool) {
    let (north, _) = two_clinics(&pool).await;
    let cache = listening_cache(&pool, FOREVER).await;
    assert_eq!(referred(&cache.board(&north.id).await.unwrap()), 1);
    set_referred_by_hand(&pool, &north.id, 9).await;
    assert_eq!(referred(&cache.board(&north.id).await.unwrap()), 1);

    // Commits made while the connection was down were never heard of: the copy must go.
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
          WHERE datname = current_database() AND query LIKE 'LISTEN %') t",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(ended, 1, "one LISTEN connection for the database");
    board_until(&cache, &north.id, |b| referred(b) == 9).await;
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn an_old_copy_is_read_again(pool: PgPool) {
    let (north, _) = two_clinics(&pool).await;
    let cache = listening_cache(&pool, Duration::from_millis(200)).await;
    assert_eq!(referred(&cache.board(&north.id).await.unwrap()), 1);
    set_referred_by_hand(&pool, &north.id, 3).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(referred(&cache.board(&north.id).await.unwrap()), 3);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn subscribers_wake_at_a_commit_heard_of_or_seen(pool: PgPool) {
    let (mut north, _) = two_clinics(&pool).await;
    let cache = listening_cache(&pool, FOREVER).await;
    let mut changes = cache.changes();

    // A NOTIFY of the members projection's commit (another process's runner, say).
    changes.seen();
    north.refer(member(3), "Cy Cole", T0).await;
    catch_up_all(&pool).await;
    let woken = tokio::time::timeout(DELIVERY, changes.next(FOREVER)).await;
    assert!(woken.is_ok(), "not woken by the NOTIFY");

    // A commit this process saw applied, before any NOTIFY.
    changes.seen();
    cache.committed(&[ProjectionName::Members]);
    let woken = tokio::time::timeout(DELIVERY, changes.next(FOREVER)).await;
    assert!(woken.is_ok(), "not woken by the commit seen");

    // Nothing committed: no wake-up.
    changes.seen();
    let quiet = tokio::time::timeout(Duration::from_millis(300), changes.next(FOREVER)).await;
    assert!(quiet.is_err(), "woken with nothing committed");
}

/// Readers of one board queued behind a read that waits on the table's lock.
async fn reads_waiting_on_the_table(monitor: &mut PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
            AND wait_event_type = 'Lock' AND query LIKE '%FROM pipeline_counts%'",
    )
    .fetch_one(monitor)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn readers_that_miss_together_share_one_read_unless_it_is_slow(pool: PgPool) {
    let (north, _) = two_clinics(&pool).await;
    let cache = listening_cache(&pool, FOREVER).await;
    // Connections of their own: the readers have the test's pool to themselves.
    let options = pool.connect_options();
    let mut monitor = PgConnection::connect_with(&options).await.unwrap();
    let mut hold = PgConnection::connect_with(&options).await.unwrap();
    // The board's table held: the first read waits for it.
    sqlx::raw_sql("BEGIN; LOCK TABLE pipeline_counts IN ACCESS EXCLUSIVE MODE")
        .execute(&mut hold)
        .await
        .unwrap();
    let started = Instant::now();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (cache, clinic) = (cache.clone(), north.id.clone());
            tokio::spawn(async move { cache.board(&clinic).await.unwrap() })
        })
        .collect();
    while reads_waiting_on_the_table(&mut monitor).await == 0 {
        assert!(started.elapsed() < DELIVERY, "no read reached the table");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        reads_waiting_on_the_table(&mut monitor).await,
        1,
        "the others wait for the first read"
    );
    // A read slower than READ_WAIT is not waited for: the others read beside it.
    tokio::time::sleep(READ_WAIT).await;
    while reads_waiting_on_the_table(&mut monitor).await < 3 {
        assert!(started.elapsed() < DELIVERY, "readers still queued");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sqlx::raw_sql("ROLLBACK").execute(&mut hold).await.unwrap();
    for reader in readers {
        assert_eq!(referred(&reader.await.unwrap()), 1);
    }

    // Missing together again, with nothing slow: all take one read's board.
    cache.committed(&[ProjectionName::Members]);
    let boards = futures::future::join_all((0..3).map(|_| cache.board(&north.id))).await;
    assert!(boards.iter().all(|b| referred(b.as_ref().unwrap()) == 1));
}

/// Member pages whose LISTEN connection is up.
async fn listening_pages(pool: &PgPool, max_age: Duration) -> MemberPages {
    let pages = MemberPages::new(pool);
    pages.set_max_age(max_age);
    until_listening(|| pages.is_listening()).await;
    pages
}

/// Waits until `pages` holds nothing: within two sweeps, or [`DELIVERY`] on a loaded machine.
async fn until_nothing_held(pages: &MemberPages, after: &str) {
    let started = Instant::now();
    while pages.held() > 0 {
        assert!(
            started.elapsed() < DELIVERY,
            "{} pages still held {after}",
            pages.held()
        );
        tokio::time::sleep(SWEEP_EVERY / 10).await;
    }
}

/// The names on the first page of `clinic`'s members, through `pages`.
async fn names(pages: &MemberPages, clinic: &ClinicId) -> Vec<String> {
    let page = pages
        .page(
            clinic,
            MemberFilter::default(),
            &PageRequest {
                first: 10,
                after: None,
            },
            Engagement::at(T0),
        )
        .await
        .unwrap();
    page.edges.into_iter().map(|edge| edge.node.name).collect()
}

/// Renames every member of `clinic` in the summaries behind the projections' back.
async fn rename_by_hand(pool: &PgPool, clinic: &ClinicId, name: &str) {
    sqlx::query("UPDATE member_summaries SET name = $2 WHERE clinic = $1")
        .bind(clinic.as_str())
        .bind(name)
        .execute(pool)
        .await
        .unwrap();
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_member_page_is_kept_until_either_projection_it_reads_commits(pool: PgPool) {
    let (north, _) = two_clinics(&pool).await;
    let pages = listening_pages(&pool, FOREVER).await;
    let ann = ["Ann Archer"];
    assert_eq!(names(&pages, &north.id).await, ann);
    rename_by_hand(&pool, &north.id, "Changed By Hand").await;
    assert_eq!(names(&pages, &north.id).await, ann, "the copy is in use");

    // Attendance comes from the groups projection: its commit (here its checkpoint touched by
    // hand, which NOTIFYs as a runner's page does) drops the copy as a members commit would.
    sqlx::query("UPDATE projection_checkpoints SET updated_at = now() WHERE projection = 'groups'")
        .execute(&pool)
        .await
        .unwrap();
    let deadline = Instant::now() + DELIVERY;
    while names(&pages, &north.id).await == ann {
        assert!(Instant::now() < deadline, "a groups commit left the copy");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(names(&pages, &north.id).await, ["Changed By Hand"]);

    rename_by_hand(&pool, &north.id, "Ann Archer").await;
    pages.committed(&[ProjectionName::Members]);
    assert_eq!(names(&pages, &north.id).await, ann, "a commit seen here");
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_page_leaves_memory_once_it_cannot_be_served(pool: PgPool) {
    let (north, south) = two_clinics(&pool).await;
    let pages = listening_pages(&pool, FOREVER).await;
    names(&pages, &north.id).await;
    names(&pages, &south.id).await;
    assert_eq!(pages.kept(), 2, "each clinic's copy");
    assert!(pages.held() >= 2);
    // Outdated by a commit (an erasure's, say) and never read again: still not held.
    pages.committed(&[ProjectionName::Members]);
    until_nothing_held(&pages, "after the commit").await;

    // Past the age bound, likewise.
    pages.set_max_age(Duration::from_millis(100));
    names(&pages, &north.id).await;
    assert_eq!(pages.kept(), 1);
    until_nothing_held(&pages, "after the age bound").await;
}
