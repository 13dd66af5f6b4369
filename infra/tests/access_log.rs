//! The access log's group commit against a real PostgreSQL: many requests at once are all
//! logged, each is answered only once its entries are committed, a request whose entries the
//! database refuses fails alone, and a database that is gone fails the request (a read must not
//! be answered unlogged).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clinic_infra::access_log::{self, AccessEntry, AccessLogWriter, AccessQuery, Accessed};
use clinic_infra::clinic::ClinicId;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

/// What the API logs: a list query as one entry naming its members, other reads one entry per
/// member.
fn entries(members: &[Uuid], action: &'static str, correlation_id: Uuid) -> Vec<AccessEntry> {
    let entry = |accessed| AccessEntry {
        actor: "counsellor-1".into(),
        role: "counselor".into(),
        accessed,
        action,
        category: Some("profile"),
        allowed: true,
        operation: "MemberPage".into(),
        correlation_id,
        break_glass_reason: None,
    };
    match action {
        "query" => vec![entry(Accessed::List(members.to_vec()))],
        _ => members
            .iter()
            .map(|m| entry(Accessed::Member(*m)))
            .collect(),
    }
}

/// How many member reads are logged under a correlation id (a list row counts its members).
async fn logged_for(pool: &PgPool, clinic: &ClinicId, correlation_id: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM access_log, unnest(coalesce(member_ids, ARRAY[member_id]))
          WHERE clinic = $1 AND correlation_id = $2",
    )
    .bind(clinic.as_str())
    .bind(correlation_id)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn concurrent_requests_are_each_answered_once_their_entries_are_committed(pool: PgPool) {
    let writer = AccessLogWriter::spawn(pool.clone());
    let clinics = [
        ClinicId::parse("north").unwrap(),
        ClinicId::parse("south").unwrap(),
    ];
    let requests: Vec<_> = (0..200)
        .map(|i| {
            let (writer, pool) = (writer.clone(), pool.clone());
            let clinic = clinics[i % 2].clone();
            tokio::spawn(async move {
                let correlation_id = Uuid::new_v4();
                let members: Vec<Uuid> = (0..1 + i % 50).map(|_| Uuid::new_v4()).collect();
                writer
                    .record(&clinic, entries(&members, "query", correlation_id))
                    .await
                    .unwrap();
                // Answered: the entries are visible to any other connection already.
                assert_eq!(
                    logged_for(&pool, &clinic, correlation_id).await,
                    members.len() as i64
                );
                members.len() as i64
            })
        })
        .collect();
    let mut expected = 0;
    for request in requests {
        expected += request.await.unwrap();
    }
    let (rows, stored): (i64, i64) = sqlx::query_as(
        "SELECT count(DISTINCT id), count(*)
           FROM access_log, unnest(coalesce(member_ids, ARRAY[member_id]))",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stored, expected);
    assert_eq!(rows, 200, "one row per list");

    // Each clinic lists only its own entries, newest first, through the (clinic, id) key.
    let north = access_log::list(
        &pool,
        &clinics[0],
        &AccessQuery {
            limit: 10_000,
            ..AccessQuery::default()
        },
    )
    .await
    .unwrap();
    let north_count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM access_log, unnest(member_ids) WHERE clinic = 'north'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(north.len() as i64, north_count);
    assert!(north
        .windows(2)
        .all(|w| (w[0].id, w[0].ordinal) > (w[1].id, w[1].ordinal)));
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_request_the_database_refuses_fails_alone(pool: PgPool) {
    let writer = AccessLogWriter::spawn(pool.clone());
    let clinic = ClinicId::parse("north").unwrap();
    // Many requests at once, so the refused one shares a batch with good ones.
    let requests: Vec<_> = (0..60)
        .map(|i| {
            let (writer, clinic) = (writer.clone(), clinic.clone());
            tokio::spawn(async move {
                // `access_log.action` accepts read, query and export only.
                let action = if i == 30 { "peek" } else { "read" };
                let correlation_id = Uuid::new_v4();
                let result = writer
                    .record(&clinic, entries(&[Uuid::new_v4()], action, correlation_id))
                    .await;
                (action, correlation_id, result)
            })
        })
        .collect();
    for request in requests {
        let (action, correlation_id, result) = request.await.unwrap();
        if action == "peek" {
            assert!(result.is_err());
            assert_eq!(logged_for(&pool, &clinic, correlation_id).await, 0);
        } else {
            result.unwrap();
            assert_eq!(logged_for(&pool, &clinic, correlation_id).await, 1);
        }
    }
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_database_that_is_gone_fails_the_request(pool: PgPool) {
    let writer = AccessLogWriter::spawn(pool.clone());
    let clinic = ClinicId::parse("north").unwrap();
    writer
        .record(&clinic, entries(&[Uuid::new_v4()], "read", Uuid::new_v4()))
        .await
        .unwrap();
    pool.close().await;
    // Every request waiting at that moment fails, each with an error (none is left waiting).
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let (writer, clinic) = (writer.clone(), clinic.clone());
            tokio::spawn(async move {
                writer
                    .record(&clinic, entries(&[Uuid::new_v4()], "read", Uuid::new_v4()))
                    .await
            })
        })
        .collect();
    for request in requests {
        let refused = request.await.unwrap();
        assert!(refused.is_err(), "{refused:?}");
    }
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn auditors_see_an_entry_per_member_of_a_list_and_page_through_each_once(pool: PgPool) {
    let clinic = ClinicId::parse("north").unwrap();
    let (alex, sam) = (Uuid::new_v4(), Uuid::new_v4());
    let others: Vec<Uuid> = (0..7).map(|_| Uuid::new_v4()).collect();
    // Three member pages listing alex (sam on two), a record read of sam, an export of alex.
    for page in 0..3 {
        let mut shown = others.clone();
        shown.insert(page, alex);
        if page < 2 {
            shown.push(sam);
        }
        access_log::record(&pool, &clinic, &entries(&shown, "query", Uuid::new_v4()))
            .await
            .unwrap();
    }
    access_log::record(&pool, &clinic, &entries(&[sam], "read", Uuid::new_v4()))
        .await
        .unwrap();
    access_log::record(&pool, &clinic, &entries(&[alex], "export", Uuid::new_v4()))
        .await
        .unwrap();

    let of = |member: Uuid, before: Option<(i64, i32)>, limit: i64| AccessQuery {
        member_id: Some(member),
        before,
        limit,
        ..AccessQuery::default()
    };
    let alex_log = access_log::list(&pool, &clinic, &of(alex, None, 100))
        .await
        .unwrap();
    let actions: Vec<&str> = alex_log.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["export", "query", "query", "query"]);
    assert!(alex_log.iter().all(|r| r.member_id == alex));
    // The ordinal is alex's place on each page, shown newest first.
    let places: Vec<i32> = alex_log.iter().skip(1).map(|r| r.ordinal).collect();
    assert_eq!(places, [3, 2, 1]);
    let sam_log = access_log::list(&pool, &clinic, &of(sam, None, 100))
        .await
        .unwrap();
    assert_eq!(sam_log.len(), 3);

    // The whole clinic, two entries a page: every entry once, in order, whatever the rows.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = access_log::list(
            &pool,
            &clinic,
            &AccessQuery {
                before,
                limit: 2,
                ..AccessQuery::default()
            },
        )
        .await
        .unwrap();
        let Some(last) = page.last() else { break };
        before = Some((last.id, last.ordinal));
        seen.extend(page.iter().map(|r| (r.id, r.ordinal, r.member_id)));
    }
    assert_eq!(seen.len(), 3 * 8 + 2 + 1 + 1);
    assert!(seen.windows(2).all(|w| (w[0].0, w[0].1) > (w[1].0, w[1].1)));
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn list_reads_are_merged_into_their_index_off_the_requests_path(pool: PgPool) {
    let limit: Option<Vec<String>> = sqlx::query_scalar(
        "SELECT reloptions FROM pg_class WHERE relname = 'access_log_member_lists_idx'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(limit.unwrap(), ["gin_pending_list_limit=16384"]);

    let writer = AccessLogWriter::spawn(pool.clone());
    let clinic = ClinicId::parse("north").unwrap();
    let list_reads = || async {
        for _ in 0..20 {
            let members: Vec<Uuid> = (0..50).map(|_| Uuid::new_v4()).collect();
            writer
                .record(&clinic, entries(&members, "query", Uuid::new_v4()))
                .await
                .unwrap();
        }
    };
    // What is left to merge after some of the writer's merge periods (merging it here).
    let pending_pages = || async {
        tokio::time::sleep(access_log::MERGE_EVERY * 4).await;
        sqlx::query_scalar::<_, i64>("SELECT gin_clean_pending_list('access_log_member_lists_idx')")
            .fetch_one(&pool)
            .await
            .unwrap()
    };

    // Another process merging (it holds the merge's lock): this writer leaves the merge to it.
    let mut other = PgConnection::connect_with(&pool.connect_options())
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_lock($1, hashtext('access_log_member_lists_idx merge'))")
        .bind(0x636c_696e_i32)
        .execute(&mut other)
        .await
        .unwrap();
    list_reads().await;
    assert!(
        pending_pages().await > 0,
        "merged while another process merges"
    );
    other.close().await.unwrap();

    // Far below the pending list's limit: only the writer's own merges empty it (without
    // them, the 20 lists stay pending). Autovacuum's analyze would merge them too, but it
    // waits for 50 new rows by default and this test writes 40. The probe merges what it
    // finds, so the test waits a fixed time instead of polling.
    list_reads().await;
    assert_eq!(
        pending_pages().await,
        0,
        "the writer merged the pending list"
    );
}
