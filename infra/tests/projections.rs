//! The projections and the read-model queries against a real PostgreSQL: every test gets a
//! fresh migrated database.
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "support/clinic.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use clinic_domain::group::JoinGroup;
use clinic_domain::values::{
    AttendanceStatus::{Absent, Excused, Late, Present},
    CheckInStatus, DischargeReason, FollowUpOutcome, FollowUpStatus, LevelOfCare, Stage,
};
use clinic_domain::{
    GroupEvent, GroupId, GroupState, MemberEvent, MemberId, MemberState, StoredEvent,
};
use clinic_infra::clinic::ClinicId;
use clinic_infra::codec;
use clinic_infra::demo::{self, DemoOptions};
use clinic_infra::event_store::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
use clinic_infra::projections::{
    self, catch_up, catch_up_pages, wait_until_caught_up, Freshness, ProjectionName, RebuildOptions,
};
use clinic_infra::read_models::{
    self, Engagement, MemberFilter, MemberSummary, PageRequest, ReadModelError,
};
use sqlx::PgPool;
use support::{
    assert_same_tables, catch_up_all, check_in, dump, group, keyring, member,
    newer_release_migrates, options, record_newer_migration, reset, session, Clinic, T0,
};
use time::{Duration, OffsetDateTime};
use tokio::sync::watch;
use uuid::Uuid;

/// "Now" in the scripted clinic: ten weeks after it opened.
const NOW: OffsetDateTime = T0.saturating_add(Duration::days(70));

fn ann() -> MemberId {
    member(1)
}
fn bob() -> MemberId {
    member(2)
}
fn cy() -> MemberId {
    member(3)
}
fn dee() -> MemberId {
    member(4)
}
fn eve() -> MemberId {
    member(5)
}
fn fay() -> MemberId {
    member(6)
}
fn gus() -> MemberId {
    member(7)
}

fn north() -> ClinicId {
    ClinicId::parse("north").unwrap()
}

/// A small clinic whose dashboard is known (see the expectations in the first test), and a
/// second clinic with one referral that must never show in the first one's.
async fn scripted_clinic(pool: &PgPool) -> Clinic {
    let mut c = Clinic::new(pool, "north");
    c.form_group(group(1), "Relapse prevention", "fac-lee")
        .await;
    c.form_group(group(2), "Coping skills", "fac-sam").await;

    c.admitted(ann(), "Ann Archer", LevelOfCare::Residential, T0)
        .await;
    c.admitted(bob(), "Bob Baker", LevelOfCare::Outpatient, T0)
        .await;
    c.admitted(cy(), "Cy Castillo", LevelOfCare::Outpatient, T0)
        .await;
    c.refer(dee(), "Dee Dunn", T0).await;
    c.refer(eve(), "Eve Ellis", T0).await;
    c.intake(eve(), T0 + Duration::days(1)).await;
    c.admitted(fay(), "Fay Fischer", LevelOfCare::Residential, T0)
        .await;
    c.admitted(gus(), "Gus Garcia", LevelOfCare::Outpatient, T0)
        .await;

    c.join(group(1), ann()).await;
    c.join(group(1), bob()).await;
    c.join(group(2), cy()).await;
    c.leave(group(2), cy()).await;

    let day = |d: i64| NOW - Duration::days(d);
    c.session(
        group(1),
        session(1),
        day(6),
        &[(ann(), Present), (bob(), Present)],
    )
    .await;
    c.session(
        group(1),
        session(2),
        day(4),
        &[(ann(), Late), (bob(), Absent)],
    )
    .await;
    c.session(
        group(1),
        session(3),
        day(2),
        &[(ann(), Present), (bob(), Absent)],
    )
    .await;
    c.session(
        group(1),
        session(4),
        day(1),
        &[(ann(), Absent), (bob(), Excused)],
    )
    .await;
    c.correct(group(1), session(4), ann(), Present).await;

    // Bob misses two check-ins in a row; Ann completes one and has one coming.
    c.schedule_check_in(bob(), check_in(1), day(5)).await;
    c.schedule_check_in(bob(), check_in(2), day(3)).await;
    c.miss_check_in(bob(), check_in(1), day(5)).await;
    c.miss_check_in(bob(), check_in(2), day(3)).await;
    c.schedule_check_in(ann(), check_in(3), day(3)).await;
    c.complete_check_in(ann(), check_in(3), day(3)).await;
    c.schedule_check_in(ann(), check_in(4), NOW + Duration::days(1))
        .await;

    // Fay completed treatment 50 days ago; two follow-ups recorded. Cy completed 10 days ago
    // (recorded late: a backdated discharge). Gus left against advice.
    c.discharge(fay(), DischargeReason::Completed, day(50))
        .await;
    c.record_follow_up(fay(), 7, FollowUpOutcome::Abstinent, day(42))
        .await;
    c.record_follow_up(fay(), 30, FollowUpOutcome::Relapsed, day(19))
        .await;
    c.discharge(cy(), DischargeReason::Completed, day(10)).await;
    c.discharge(gus(), DischargeReason::AgainstAdvice, day(20))
        .await;

    let mut south = Clinic::new(pool, "south");
    south.refer(member(99), "Sol South", T0).await;
    c
}

fn names(members: &[MemberSummary]) -> Vec<&str> {
    members.iter().map(|m| m.name.as_str()).collect()
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn the_dashboard_after_a_scripted_pipeline_is_the_expected_one(pool: PgPool) {
    scripted_clinic(&pool).await;
    catch_up_all(&pool).await;
    let clinic = north();
    let at = Engagement::at(NOW);

    // Pipeline board: the south clinic's referral is not counted.
    let board = read_models::pipeline_board(&pool, &clinic).await.unwrap();
    let stages: Vec<(Stage, i64)> = board.stages.iter().map(|s| (s.stage, s.count)).collect();
    assert_eq!(
        stages,
        vec![
            (Stage::Referred, 1),
            (Stage::Intake, 1),
            (Stage::InTreatment, 2),
            (Stage::Discharged, 1),
            (Stage::Aftercare, 2),
            (Stage::Alumni, 0),
        ]
    );
    let levels: Vec<(LevelOfCare, i64)> = board
        .in_treatment_by_level
        .iter()
        .map(|l| (l.level_of_care, l.count))
        .collect();
    assert_eq!(
        levels,
        vec![
            (LevelOfCare::WithdrawalManagement, 0),
            (LevelOfCare::Residential, 1),
            (LevelOfCare::PartialHospitalization, 0),
            (LevelOfCare::IntensiveOutpatient, 0),
            (LevelOfCare::Outpatient, 1),
        ]
    );

    // The member list, in referral order, three at a time.
    let first = read_models::members_page(
        &pool,
        &clinic,
        MemberFilter::default(),
        &PageRequest::first(3),
        at,
    )
    .await
    .unwrap();
    assert_eq!(first.total_count, 7);
    assert!(first.has_next_page);
    let nodes: Vec<MemberSummary> = first.edges.iter().map(|e| e.node.clone()).collect();
    assert_eq!(names(&nodes), ["Ann Archer", "Bob Baker", "Cy Castillo"]);
    let second = read_models::members_page(
        &pool,
        &clinic,
        MemberFilter::default(),
        &PageRequest {
            first: 3,
            after: first.end_cursor.clone(),
        },
        at,
    )
    .await
    .unwrap();
    let nodes: Vec<MemberSummary> = second.edges.iter().map(|e| e.node.clone()).collect();
    assert_eq!(names(&nodes), ["Dee Dunn", "Eve Ellis", "Fay Fischer"]);
    let third = read_models::members_page(
        &pool,
        &clinic,
        MemberFilter::default(),
        &PageRequest {
            first: 3,
            after: second.end_cursor.clone(),
        },
        at,
    )
    .await
    .unwrap();
    assert_eq!(third.edges.len(), 1);
    assert!(!third.has_next_page);
    assert!(matches!(
        read_models::members_page(
            &pool,
            &clinic,
            MemberFilter::default(),
            &PageRequest {
                first: 3,
                after: Some("g12".into()),
            },
            at,
        )
        .await,
        Err(ReadModelError::InvalidCursor)
    ));

    // Filters: stage, at risk.
    let page = |stage, at_risk| {
        let pool = pool.clone();
        let clinic = clinic.clone();
        async move {
            read_models::members_page(
                &pool,
                &clinic,
                MemberFilter { stage, at_risk },
                &PageRequest::first(50),
                at,
            )
            .await
            .unwrap()
        }
    };
    let in_treatment = page(Some(Stage::InTreatment), None).await;
    assert_eq!(in_treatment.total_count, 2);
    let at_risk = page(None, Some(true)).await;
    assert_eq!(at_risk.total_count, 1);
    assert_eq!(at_risk.edges[0].node.name, "Bob Baker");
    assert_eq!(page(None, Some(false)).await.total_count, 6);

    // The member page, batch-loaded; another clinic's id is simply not found.
    let found = read_models::members_by_ids(&pool, &clinic, &[bob(), ann(), member(99)], at)
        .await
        .unwrap();
    assert_eq!(names(&found), ["Ann Archer", "Bob Baker"]);
    let (a, b) = (&found[0], &found[1]);
    assert_eq!(a.stage, Stage::InTreatment);
    assert_eq!(a.level_of_care, Some(LevelOfCare::Residential));
    assert_eq!(
        a.version, 6,
        "refer, intake, admit, 2 check-ins scheduled, 1 completed"
    );
    assert_eq!(
        a.sessions_attended_last_7_days, 4,
        "the corrected absence counts"
    );
    assert!(!a.at_risk);
    assert_eq!(a.consecutive_missed_check_ins, 0);
    assert_eq!(b.sessions_attended_last_7_days, 1);
    assert!(b.at_risk);
    assert_eq!(b.consecutive_missed_check_ins, 2);

    let check_ins = read_models::check_ins_of_members(&pool, &clinic, &[ann(), bob()])
        .await
        .unwrap();
    let got: Vec<(MemberId, CheckInStatus)> =
        check_ins.iter().map(|c| (c.member_id, c.status)).collect();
    assert_eq!(got.len(), 4);
    assert!(got.contains(&(ann(), CheckInStatus::Completed)));
    assert!(got.contains(&(ann(), CheckInStatus::Scheduled)));
    assert_eq!(
        got.iter()
            .filter(|c| **c == (bob(), CheckInStatus::Missed))
            .count(),
        2
    );

    // Groups: roster, sessions with corrected attendance, attendance rate.
    let groups = read_models::groups_page(&pool, &clinic, None, &PageRequest::first(1))
        .await
        .unwrap();
    assert_eq!(groups.total_count, 2);
    assert!(groups.has_next_page);
    let g1 = &groups.edges[0].node;
    assert_eq!(g1.name, "Relapse prevention");
    assert_eq!(g1.roster_size, 2);
    assert!(
        (g1.attendance_rate - 5.0 / 8.0).abs() < 1e-9,
        "{}",
        g1.attendance_rate
    );
    let rosters = read_models::rosters(&pool, &clinic, &[group(1), group(2)])
        .await
        .unwrap();
    let on_roster: Vec<_> = rosters.iter().map(|r| (r.group_id, r.member_id)).collect();
    assert_eq!(on_roster, vec![(group(1), ann()), (group(1), bob())]);
    let memberships = read_models::groups_of_members(&pool, &clinic, &[ann(), cy()])
        .await
        .unwrap();
    assert_eq!(memberships.len(), 1, "Cy left their group");
    let sessions = read_models::sessions_of_groups(&pool, &clinic, &[group(1)])
        .await
        .unwrap();
    assert_eq!(sessions.len(), 4);
    let last = &sessions[3];
    assert_eq!(last.id, session(4));
    let ann_there = last
        .attendance
        .iter()
        .find(|a| a.member_id == ann())
        .unwrap();
    assert_eq!(
        ann_there.status, Present,
        "dashboards use the corrected value"
    );

    // Flags: stopped attending (per facilitator) and outreach.
    let whole = PageRequest::first(50);
    let flagged = read_models::stopped_attending(&pool, &clinic, Some("fac-lee"), &whole)
        .await
        .unwrap();
    assert_eq!((flagged.edges.len(), flagged.total_count), (1, 1));
    assert_eq!(flagged.edges[0].node.member_id, bob());
    assert_eq!(
        flagged.edges[0].node.consecutive_absences, 2,
        "the excused session breaks nothing"
    );
    let none = read_models::stopped_attending(&pool, &clinic, Some("fac-sam"), &whole)
        .await
        .unwrap();
    assert_eq!((none.edges.len(), none.total_count), (0, 0));
    let outreach = read_models::outreach_items(&pool, &clinic, None, &whole)
        .await
        .unwrap();
    assert_eq!((outreach.edges.len(), outreach.total_count), (1, 1));
    assert_eq!(outreach.edges[0].node.member_id, bob());
    assert_eq!(
        outreach.edges[0].node.primary_counselor.as_deref(),
        Some("counselor-kim")
    );
    let at_risk = read_models::at_risk_members(&pool, &clinic, at)
        .await
        .unwrap();
    assert_eq!(names(&at_risk), ["Bob Baker"]);

    // Aftercare: the follow-up list and the outcomes report.
    let due_now = read_models::follow_ups_due(&pool, &clinic, 0, NOW)
        .await
        .unwrap();
    let got: Vec<_> = due_now
        .iter()
        .map(|f| (f.member_id, f.day_offset))
        .collect();
    assert_eq!(
        got,
        vec![(cy(), 7)],
        "Cy's day-7 follow-up fell due 3 days ago"
    );
    let due_month = read_models::follow_ups_due(&pool, &clinic, 30, NOW)
        .await
        .unwrap();
    let got: Vec<_> = due_month
        .iter()
        .map(|f| (f.member_id, f.day_offset))
        .collect();
    assert_eq!(got, vec![(cy(), 7), (cy(), 30)]);
    // The same list a page at a time: each follow-up once, in order, with the total.
    let mut paged = Vec::new();
    let mut request = PageRequest::first(1);
    loop {
        let page = read_models::follow_ups_due_page(&pool, &clinic, 30, NOW, &request)
            .await
            .unwrap();
        assert_eq!(page.total_count, 2);
        paged.extend(
            page.edges
                .iter()
                .map(|e| (e.node.member_id, e.node.day_offset)),
        );
        if !page.has_next_page {
            break;
        }
        request.after = page.end_cursor;
    }
    assert_eq!(paged, got);
    assert!(matches!(
        read_models::follow_ups_due_page(
            &pool,
            &clinic,
            30,
            NOW,
            &PageRequest {
                first: 1,
                after: Some("m12".into()),
            }
        )
        .await,
        Err(ReadModelError::InvalidCursor)
    ));
    let report = read_models::outcomes(&pool, &clinic).await.unwrap();
    let rows: Vec<(i32, i64)> = report
        .rows
        .iter()
        .map(|r| (r.day_offset, r.recorded))
        .collect();
    assert_eq!(rows, vec![(7, 1), (30, 1), (90, 0), (180, 0), (365, 0)]);
    let day30 = &report.rows[1];
    let relapsed = day30
        .outcomes
        .iter()
        .find(|o| o.outcome == FollowUpOutcome::Relapsed)
        .unwrap();
    assert_eq!(relapsed.count, 1);
    let fay_follow_ups = read_models::follow_ups_of_members(&pool, &clinic, &[fay()])
        .await
        .unwrap();
    assert_eq!(fay_follow_ups.len(), 5);
    assert_eq!(fay_follow_ups[0].status, FollowUpStatus::Completed);
    assert_eq!(fay_follow_ups[0].outcome, Some(FollowUpOutcome::Abstinent));
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn engagement_changes_as_days_pass_without_new_events(pool: PgPool) {
    scripted_clinic(&pool).await;
    catch_up_all(&pool).await;
    let clinic = north();
    let ann_at = |now: OffsetDateTime| {
        let pool = pool.clone();
        let clinic = clinic.clone();
        async move {
            read_models::members_by_ids(&pool, &clinic, &[ann()], Engagement::at(now))
                .await
                .unwrap()
                .remove(0)
        }
    };
    let now = ann_at(NOW).await;
    assert_eq!((now.sessions_attended_last_7_days, now.at_risk), (4, false));
    // Two and a half days on, the first session has left the window: 3 is still the dose.
    let later = ann_at(NOW + Duration::hours(60)).await;
    assert_eq!(
        (later.sessions_attended_last_7_days, later.at_risk),
        (3, false)
    );
    // Three days on, the second one has too.
    let later = ann_at(NOW + Duration::days(3)).await;
    assert_eq!(
        (later.sessions_attended_last_7_days, later.at_risk),
        (2, true)
    );
    // A week and a day on, nothing is left.
    let later = ann_at(NOW + Duration::days(8)).await;
    assert_eq!(
        (later.sessions_attended_last_7_days, later.at_risk),
        (0, true)
    );

    let at_risk = |now| {
        let pool = pool.clone();
        let clinic = clinic.clone();
        async move {
            read_models::members_page(
                &pool,
                &clinic,
                MemberFilter {
                    stage: None,
                    at_risk: Some(true),
                },
                &PageRequest::first(10),
                Engagement::at(now),
            )
            .await
            .unwrap()
            .total_count
        }
    };
    assert_eq!(at_risk(NOW).await, 1);
    assert_eq!(at_risk(NOW + Duration::days(8)).await, 2);
}

/// A demo clinic: a few thousand events of every kind, interleaved across streams.
async fn demo_log(pool: &PgPool, clinic: &str, members: u32, days: u32) -> u64 {
    seeded_demo_log(pool, clinic, members, days, DemoOptions::DEFAULT_SEED).await
}

/// [`demo_log`] with the simulation's seed chosen.
async fn seeded_demo_log(pool: &PgPool, clinic: &str, members: u32, days: u32, seed: u64) -> u64 {
    let mut options = DemoOptions::new(ClinicId::parse(clinic).unwrap(), members, days);
    options.flush_every_days = 3;
    options.seed = seed;
    demo::seed_demo(
        &EventStore::new(pool.clone()),
        &keyring(pool),
        &options,
        NOW,
    )
    .await
    .unwrap()
    .events
}

fn random_below(n: u64) -> u64 {
    (uuid::Uuid::new_v4().as_u128() % u128::from(n)) as u64
}

async fn checkpoint(pool: &PgPool, projection: ProjectionName) -> i64 {
    sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE projection = $1")
        .bind(projection.as_str())
        .fetch_optional(pool)
        .await
        .unwrap()
        .unwrap_or(0)
}

async fn last_position(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn resuming_after_a_kill_at_a_random_position_gives_the_same_tables_as_one_run(pool: PgPool) {
    let events = demo_log(&pool, "north", 120, 60).await;
    scripted_clinic(&pool).await;
    let batch = 20 + random_below(200) as u32;
    let pages = 1 + random_below(events / u64::from(batch)) as usize;
    println!("{events} events; stopping after {pages} pages of {batch}");

    // Interrupted: stop after a random number of pages, then a runner killed mid-flight at a
    // random moment, then finish.
    for &projection in ProjectionName::ALL {
        catch_up_pages(&pool, &keyring(&pool), projection, &options(batch), pages)
            .await
            .unwrap();
    }
    let (_stop, stopped) = watch::channel(false);
    let runner = tokio::spawn(projections::run(
        pool.clone(),
        keyring(&pool),
        ProjectionName::Members,
        options(batch),
        stopped,
    ));
    let target = checkpoint(&pool, ProjectionName::Members).await + random_below(events / 2) as i64;
    for _ in 0..2000 {
        if checkpoint(&pool, ProjectionName::Members).await >= target {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(2)).await;
    }
    runner.abort();
    let _ = runner.await;
    catch_up_all(&pool).await;
    let resumed = dump(&pool).await;

    // Uninterrupted: from the start in one go.
    reset(&pool).await;
    catch_up_all(&pool).await;
    let one_run = dump(&pool).await;
    assert_same_tables(&resumed, &one_run);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn two_runners_at_once_never_apply_an_event_twice(pool: PgPool) {
    demo_log(&pool, "north", 100, 50).await;
    scripted_clinic(&pool).await;
    catch_up_all(&pool).await;
    let expected = dump(&pool).await;
    reset(&pool).await;

    // Two full runners per projection (one leads, one waits), and two bare catch-ups per
    // projection that skip the leadership lock altogether: only the checkpoint row's lock
    // stands between them.
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    for &projection in ProjectionName::ALL {
        for _ in 0..2 {
            tasks.push(tokio::spawn(projections::run(
                pool.clone(),
                keyring(&pool),
                projection,
                options(37),
                stopped.clone(),
            )));
        }
    }
    let bare: Vec<_> = ProjectionName::ALL
        .iter()
        .flat_map(|&projection| {
            let pool = pool.clone();
            [53, 71].map(move |batch| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    catch_up(&pool, &keyring(&pool), projection, &options(batch)).await
                })
            })
        })
        .collect();
    for task in bare {
        task.await.unwrap().unwrap();
    }
    let freshness = wait_until_caught_up(
        &pool,
        ProjectionName::ALL,
        last_position(&pool).await,
        StdDuration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(freshness, Freshness::CaughtUp);
    stop.send(true).unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    assert_same_tables(&dump(&pool).await, &expected);
}

/// The member list's total comes from the pipeline counters unless at risk is asked: with
/// every filter, it is the number of members the list holds.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn the_member_list_total_is_the_number_of_members_it_lists(pool: PgPool) {
    demo_log(&pool, "north", 100, 50).await;
    demo_log(&pool, "south", 40, 30).await;
    catch_up_all(&pool).await;
    let clinic = north();
    let mut listed = 0;
    for stage in std::iter::once(None).chain(Stage::ALL.iter().copied().map(Some)) {
        for at_risk in [None, Some(true), Some(false)] {
            let filter = MemberFilter { stage, at_risk };
            let page = read_models::members_page(
                &pool,
                &clinic,
                filter,
                &PageRequest::first(read_models::MAX_PAGE_SIZE),
                Engagement::at(NOW),
            )
            .await
            .unwrap();
            assert!(!page.has_next_page, "{filter:?}");
            assert_eq!(page.total_count, page.edges.len() as i64, "{filter:?}");
            for member in page.edges.iter().map(|e| &e.node) {
                assert!(stage.is_none_or(|s| member.stage == s), "{filter:?}");
                assert!(at_risk.is_none_or(|r| member.at_risk == r), "{filter:?}");
            }
            let positions: Vec<i64> = page
                .edges
                .iter()
                .map(|e| e.cursor.clone())
                .map(|c| c.trim_start_matches('m').parse().unwrap())
                .collect();
            assert!(positions.is_sorted(), "{filter:?}: referral order");
            // Small pages give the same members.
            let mut paged = Vec::new();
            let mut request = PageRequest::first(7);
            loop {
                let small = read_models::members_page(
                    &pool,
                    &clinic,
                    filter,
                    &request,
                    Engagement::at(NOW),
                )
                .await
                .unwrap();
                assert_eq!(small.total_count, page.total_count, "{filter:?}");
                paged.extend(small.edges.iter().map(|e| e.node.id));
                if !small.has_next_page {
                    break;
                }
                request.after = small.end_cursor;
            }
            let whole: Vec<MemberId> = page.edges.iter().map(|e| e.node.id).collect();
            assert_eq!(paged, whole, "{filter:?}");
            if stage.is_none() && at_risk.is_none() {
                listed = page.edges.len();
            }
        }
    }
    let members: i64 =
        sqlx::query_scalar("SELECT count(*) FROM member_summaries WHERE clinic = 'north'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        listed as i64, members,
        "the other clinic's members are not counted"
    );
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_rebuild_gives_the_same_tables_as_the_live_projections(pool: PgPool) {
    demo_log(&pool, "north", 100, 50).await;
    scripted_clinic(&pool).await;
    catch_up_all(&pool).await;
    let live = dump(&pool).await;

    let report = projections::rebuild(
        &pool,
        &keyring(&pool),
        ProjectionName::ALL,
        &RebuildOptions {
            batch_size: 97,
            ..RebuildOptions::default()
        },
        |_| {},
    )
    .await
    .unwrap();
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(report.events > 0 && report.events as i64 <= events);
    // The swap stops at the last event older than every running transaction on the server;
    // the live runners carry on from the swapped checkpoint.
    catch_up_all(&pool).await;
    assert_same_tables(&dump(&pool).await, &live);
    let shadows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild_%' OR nspname LIKE 'retired_%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(shadows, 0, "no shadow schema is left behind");
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_rebuild_while_events_arrive_and_a_runner_follows_them_loses_nothing(pool: PgPool) {
    demo_log(&pool, "north", 100, 50).await;
    catch_up_all(&pool).await;

    // While the rebuild runs: a live runner per projection, and a second clinic's history
    // arriving.
    let (stop, stopped) = watch::channel(false);
    let runners: Vec<_> = ProjectionName::ALL
        .iter()
        .map(|&p| {
            tokio::spawn(projections::run(
                pool.clone(),
                keyring(&pool),
                p,
                options(50),
                stopped.clone(),
            ))
        })
        .collect();
    let writer = {
        let pool = pool.clone();
        tokio::spawn(async move { demo_log(&pool, "south", 60, 40).await })
    };
    let rebuilt = projections::rebuild(
        &pool,
        &keyring(&pool),
        ProjectionName::ALL,
        &RebuildOptions {
            batch_size: 61,
            ..RebuildOptions::default()
        },
        |_| {},
    )
    .await
    .unwrap();
    writer.await.unwrap();
    assert!(rebuilt.events > 0);
    let freshness = wait_until_caught_up(
        &pool,
        ProjectionName::ALL,
        last_position(&pool).await,
        StdDuration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(freshness, Freshness::CaughtUp);
    stop.send(true).unwrap();
    for runner in runners {
        runner.await.unwrap();
    }
    let after = dump(&pool).await;

    reset(&pool).await;
    catch_up_all(&pool).await;
    assert_same_tables(&after, &dump(&pool).await);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn rebuilding_one_projection_leaves_the_other_untouched(pool: PgPool) {
    scripted_clinic(&pool).await;
    catch_up_all(&pool).await;
    let before = dump(&pool).await;
    sqlx::query("UPDATE group_summaries SET name = 'edited by hand'")
        .execute(&pool)
        .await
        .unwrap();
    projections::rebuild(
        &pool,
        &keyring(&pool),
        &[ProjectionName::Members],
        &RebuildOptions::default(),
        |_| {},
    )
    .await
    .unwrap();
    let names: Vec<String> = sqlx::query_scalar("SELECT DISTINCT name FROM group_summaries")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(names, ["edited by hand"]);
    projections::rebuild(
        &pool,
        &keyring(&pool),
        &[ProjectionName::Groups],
        &RebuildOptions::default(),
        |_| {},
    )
    .await
    .unwrap();
    catch_up_all(&pool).await;
    assert_same_tables(&dump(&pool).await, &before);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn the_api_can_wait_until_the_projections_have_applied_its_write(pool: PgPool) {
    let mut c = scripted_clinic(&pool).await;
    catch_up_all(&pool).await;
    c.refer(member(50), "Hal Hughes", NOW).await;
    let written = c.last_position;

    // No runner: the wait is bounded and says so.
    let waited = wait_until_caught_up(
        &pool,
        &[ProjectionName::Members],
        written,
        StdDuration::from_millis(50),
    )
    .await
    .unwrap();
    assert_eq!(waited, Freshness::TimedOut);

    let (stop, stopped) = watch::channel(false);
    let runners = projections::spawn_runners(&pool, &keyring(&pool), &options(100), &stopped);
    let waited = wait_until_caught_up(
        &pool,
        &[ProjectionName::Members],
        written,
        StdDuration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(waited, Freshness::CaughtUp);
    let hal = read_models::members_by_ids(&pool, &north(), &[member(50)], Engagement::at(NOW))
        .await
        .unwrap();
    assert_eq!(names(&hal), ["Hal Hughes"], "read your write");
    stop.send(true).unwrap();
    for runner in runners {
        runner.await.unwrap();
    }
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_standby_runner_takes_over_when_the_leader_stops(pool: PgPool) {
    let mut c = scripted_clinic(&pool).await;
    let projection = ProjectionName::Members;
    let (stop_first, first_stopped) = watch::channel(false);
    let first = tokio::spawn(projections::run(
        pool.clone(),
        keyring(&pool),
        projection,
        options(100),
        first_stopped,
    ));
    let caught_up = |position| {
        let pool = pool.clone();
        async move {
            wait_until_caught_up(&pool, &[projection], position, StdDuration::from_secs(30))
                .await
                .unwrap()
        }
    };
    assert_eq!(caught_up(c.last_position).await, Freshness::CaughtUp);

    let (stop_second, second_stopped) = watch::channel(false);
    let second = tokio::spawn(projections::run(
        pool.clone(),
        keyring(&pool),
        projection,
        options(100),
        second_stopped,
    ));
    c.refer(member(60), "Ida Ibarra", NOW).await;
    assert_eq!(caught_up(c.last_position).await, Freshness::CaughtUp);

    // The leader goes away; its lock goes with its connection; the standby takes over.
    stop_first.send(true).unwrap();
    first.await.unwrap();
    c.refer(member(61), "Jo Jensen", NOW).await;
    assert_eq!(caught_up(c.last_position).await, Freshness::CaughtUp);
    let found = read_models::members_by_ids(&pool, &north(), &[member(61)], Engagement::at(NOW))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    stop_second.send(true).unwrap();
    second.await.unwrap();
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_runner_of_an_older_release_stops_when_a_newer_release_migrates(pool: PgPool) {
    let mut c = scripted_clinic(&pool).await;
    let projection = ProjectionName::Members;
    let (_stop, stopped) = watch::channel(false);
    let runner = tokio::spawn(projections::run(
        pool.clone(),
        keyring(&pool),
        projection,
        options(100),
        stopped,
    ));
    let caught_up = wait_until_caught_up(
        &pool,
        &[projection],
        c.last_position,
        StdDuration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(caught_up, Freshness::CaughtUp);

    // A newer release migrates while this runner follows the log, refolding this projection
    // (its tables emptied, its checkpoint back to the start), and events keep coming.
    let database = newer_release_migrates(&pool, Some(projection)).await;
    c.refer(member(60), "Ida Ibarra", NOW).await;

    // The runner stops by itself, for good, without folding a single event by its own rules:
    // the newer release's runner refolds from the start.
    tokio::time::timeout(StdDuration::from_secs(30), runner)
        .await
        .expect("the runner stops by itself")
        .unwrap();
    assert_eq!(checkpoint(&pool, projection).await, 0);
    let summaries: i64 = sqlx::query_scalar("SELECT count(*) FROM member_summaries")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(summaries, 0);

    // Nothing else of this build writes the projection either: neither a catch-up nor a rebuild
    // (whose swap would put this build's fold back in place), nor this build restarted
    // (sqlx refuses a database holding a migration the build does not know).
    let build = clinic_infra::db::newest_embedded_migration();
    let superseded = |error| {
        matches!(error, projections::ProjectionError::Superseded(s)
            if s.database == database && s.build == build)
    };
    let error = catch_up(&pool, &keyring(&pool), projection, &options(100))
        .await
        .unwrap_err();
    assert!(superseded(error));
    let error = projections::rebuild(
        &pool,
        &keyring(&pool),
        &[projection],
        &RebuildOptions::default(),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(superseded(error));
    assert_eq!(
        shadow_schemas(&pool).await,
        Vec::<String>::new(),
        "the failed rebuild dropped its tables"
    );
    assert_eq!(checkpoint(&pool, projection).await, 0);
    assert!(matches!(
        clinic_infra::MIGRATOR.run(&pool).await,
        Err(sqlx::migrate::MigrateError::VersionMissing(v)) if v == database
    ));
}

/// The race the checkpoint store closes: a refolding migration commits while a runner that has
/// already opened its page waits for the checkpoint lock, and the page starts where the
/// migration set the checkpoint (the start of the log), so the moved checkpoint does not give
/// the migration away.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_page_opened_before_a_newer_release_migrated_commits_nothing(pool: PgPool) {
    scripted_clinic(&pool).await;
    let projection = ProjectionName::Members;
    catch_up_pages(&pool, &keyring(&pool), projection, &options(100), 0)
        .await
        .unwrap();

    // The migration's transaction holds the checkpoint's lock... (a row lock takes a
    // transaction id, which holds back every commit-safe reader on the server, other tests'
    // included: held for milliseconds here.)
    let mut migration = pool.begin().await.unwrap();
    sqlx::query("SELECT position FROM projection_checkpoints WHERE projection = $1 FOR UPDATE")
        .bind(projection.as_str())
        .execute(&mut *migration)
        .await
        .unwrap();
    // ...while the runner opens its page (seeing no newer migration yet) and waits for it.
    let runner = {
        let pool = pool.clone();
        tokio::spawn(
            async move { catch_up(&pool, &keyring(&pool), projection, &options(100)).await },
        )
    };
    let mut waiting = 0_i64;
    for _ in 0..500 {
        waiting = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    assert_eq!(waiting, 1, "the runner waits for the checkpoint lock");
    sqlx::query("UPDATE projection_checkpoints SET position = 0 WHERE projection = $1")
        .bind(projection.as_str())
        .execute(&mut *migration)
        .await
        .unwrap();
    let database = record_newer_migration(&mut migration).await;
    migration.commit().await.unwrap();

    let error = runner.await.unwrap().unwrap_err();
    assert!(
        matches!(error, projections::ProjectionError::Superseded(s) if s.database == database),
        "{error}"
    );
    assert_eq!(checkpoint(&pool, projection).await, 0);
    let summaries: i64 = sqlx::query_scalar("SELECT count(*) FROM member_summaries")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        summaries, 0,
        "the page folded by out-of-date rules was rolled back"
    );
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn readmission_records_the_follow_ups_not_yet_due_as_readmitted(pool: PgPool) {
    let mut c = scripted_clinic(&pool).await;
    // Fay (day 7 and 30 recorded, 90 to 365 planned) comes back.
    c.member(
        fay(),
        clinic_domain::member::ReadmitMember {
            level_of_care: LevelOfCare::IntensiveOutpatient,
            primary_counselor: None,
            at: NOW,
        },
    )
    .await;
    catch_up_all(&pool).await;
    let left = read_models::follow_ups_of_members(&pool, &north(), &[fay()])
        .await
        .unwrap();
    let outcomes: Vec<_> = left.iter().map(|f| (f.day_offset, f.status)).collect();
    assert_eq!(
        outcomes,
        [7, 30, 90, 180, 365].map(|d| (d, FollowUpStatus::Completed))
    );
    assert!(left[2..]
        .iter()
        .all(|f| f.outcome == Some(FollowUpOutcome::Readmitted)));
    let report = read_models::outcomes(&pool, &north()).await.unwrap();
    let recorded: Vec<_> = report
        .rows
        .iter()
        .map(|r| (r.day_offset, r.recorded))
        .collect();
    assert_eq!(recorded, [7, 30, 90, 180, 365].map(|d| (d, 1)));
}

/// Appends session 1 of group 1 as schema v1 stored it (a list of who was present), as a
/// legacy import would.
async fn append_v1_session(c: &Clinic, held_at: OffsetDateTime, present: &[MemberId]) {
    let v1 = NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "SessionHeld".into(),
        schema_version: 1,
        data: serde_json::json!({
            "session_id": session(1),
            "held_at": held_at.format(&time::format_description::well_known::Rfc3339).unwrap(),
            "topic": "Coping with cravings",
            "duration_minutes": 90,
            "attendance": present,
        }),
        metadata: Metadata {
            actor: "legacy-import".into(),
            correlation_id: Uuid::new_v4(),
            causation_id: None,
            request: None,
        },
    };
    c.store
        .append(
            &c.id,
            &StreamId::of("group", group(1).as_uuid()),
            ExpectedVersion::Any,
            &[v1],
        )
        .await
        .unwrap();
}

/// Session 1's attendance in the read model, by member.
async fn session_1_statuses(pool: &PgPool) -> Vec<(Uuid, String)> {
    sqlx::query_as(
        "SELECT member_id, status FROM session_attendance WHERE session_id = $1 ORDER BY member_id",
    )
    .bind(session(1).as_uuid())
    .fetch_all(pool)
    .await
    .unwrap()
}

/// A clinic with group 1 and members 1 to 3 on its roster (joined at T0 + 3 days).
async fn three_on_the_roster(pool: &PgPool) -> Clinic {
    let mut c = Clinic::new(pool, "north");
    c.form_group(group(1), "Evening skills", "fac-lee").await;
    for n in 1..=3 {
        c.admitted(
            member(n),
            &format!("Member {n}"),
            LevelOfCare::Outpatient,
            T0,
        )
        .await;
        c.join(group(1), member(n)).await;
    }
    c
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_session_stored_by_schema_v1_records_the_unlisted_roster_absent(pool: PgPool) {
    let c = three_on_the_roster(&pool).await;
    // Let the roster reach the read models first, so the v1 session is folded in a page of its
    // own.
    catch_up_all(&pool).await;
    append_v1_session(&c, T0 + Duration::days(3), &[member(1)]).await;
    catch_up_all(&pool).await;
    assert_eq!(
        session_1_statuses(&pool).await,
        [
            (member(1).as_uuid(), "present".to_owned()),
            (member(2).as_uuid(), "absent".to_owned()),
            (member(3).as_uuid(), "absent".to_owned()),
        ]
    );
}

/// A v1 session imported after the roster changed counts the roster of the day it was held,
/// as the domain does: a member who has left since, or left and rejoined, was on it then.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_v1_session_recorded_after_the_roster_changed_counts_that_days_roster(pool: PgPool) {
    let mut c = three_on_the_roster(&pool).await;
    c.leave(group(1), member(2)).await;
    c.group(
        group(1),
        JoinGroup {
            member: member(2),
            member_stage: Some(Stage::InTreatment),
            at: T0 + Duration::days(40),
        },
    )
    .await;
    c.leave(group(1), member(3)).await;
    catch_up_all(&pool).await;
    append_v1_session(&c, T0 + Duration::days(10), &[member(1)]).await;
    catch_up_all(&pool).await;
    let expected = [
        (member(1).as_uuid(), "present".to_owned()),
        (member(2).as_uuid(), "absent".to_owned()),
        (member(3).as_uuid(), "absent".to_owned()),
    ];
    assert_eq!(session_1_statuses(&pool).await, expected);
    let (_, events) = streams_of::<GroupEvent>(&pool, &north(), "group")
        .await
        .pop()
        .unwrap();
    let state = GroupState::from_events(&events);
    let mut domain: Vec<_> = state.sessions()[0]
        .attendance
        .iter()
        .map(|a| (a.member_id.as_uuid(), a.status.as_str().to_owned()))
        .collect();
    domain.sort();
    assert_eq!(domain, expected, "the domain agrees");

    // Rebuilt from the log in pages of one event, and in one page with the group's earlier
    // events: the same.
    let before = dump(&pool).await;
    for batch_size in [1, 10_000] {
        projections::rebuild(
            &pool,
            &keyring(&pool),
            &[ProjectionName::Groups],
            &RebuildOptions {
                batch_size,
                ..RebuildOptions::default()
            },
            |_| {},
        )
        .await
        .unwrap();
        assert_same_tables(&dump(&pool).await, &before);
    }
}

/// Every stream of `category` in `clinic`, as its entity's id and its decoded events.
async fn streams_of<E: StoredEvent>(
    pool: &PgPool,
    clinic: &ClinicId,
    category: &str,
) -> Vec<(Uuid, Vec<E>)> {
    let store = EventStore::new(pool.clone());
    let streams: Vec<String> =
        sqlx::query_scalar("SELECT stream_id FROM streams WHERE clinic = $1 AND category = $2")
            .bind(clinic.as_str())
            .bind(category)
            .fetch_all(pool)
            .await
            .unwrap();
    let mut decoded = Vec::new();
    for stream in streams {
        let stream = StreamId::parse(&stream).unwrap();
        let rows = store.read_stream(clinic, &stream, 1).await.unwrap();
        let events = codec::decode_all(&keyring(pool), &rows).await.unwrap();
        let id = stream.as_str()[category.len() + 1..].parse().unwrap();
        decoded.push((id, events));
    }
    decoded
}

/// What the domain's fold of each open group's stream flags as stopped attending, in
/// `clinic`: (group, member, run of absences), sorted.
async fn stopped_attending_by_the_domain(
    pool: &PgPool,
    clinic: &ClinicId,
) -> Vec<(GroupId, MemberId, i64)> {
    let mut flagged = Vec::new();
    for (id, events) in streams_of::<GroupEvent>(pool, clinic, "group").await {
        let state = GroupState::from_events(&events);
        if state.closed() {
            continue;
        }
        let group = GroupId::new(id);
        for (member, run) in state.members_who_stopped_attending() {
            flagged.push((group, member, i64::from(run)));
        }
    }
    flagged.sort();
    flagged
}

/// The read model's stopped-attending list, whole, as (group, member, run), sorted.
async fn stopped_attending_by_the_read_model(
    pool: &PgPool,
    clinic: &ClinicId,
) -> Vec<(GroupId, MemberId, i64)> {
    let page = read_models::stopped_attending(pool, clinic, None, &PageRequest::first(1000))
        .await
        .unwrap();
    assert!(!page.has_next_page);
    let mut flagged: Vec<_> = page
        .edges
        .iter()
        .map(|e| {
            (
                e.node.group_id,
                e.node.member_id,
                e.node.consecutive_absences,
            )
        })
        .collect();
    flagged.sort();
    flagged
}

/// A member who left a group and rejoined starts a new stretch: the absences before they left
/// no longer flag them (as the domain's fold counts), and an excused session neither counts
/// nor breaks a run.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn stopped_attending_counts_only_the_latest_stretch_on_the_roster(pool: PgPool) {
    let mut c = Clinic::new(&pool, "north");
    c.form_group(group(1), "Relapse prevention", "fac-lee")
        .await;
    c.admitted(ann(), "Ann Archer", LevelOfCare::Outpatient, T0)
        .await;
    c.admitted(bob(), "Bob Baker", LevelOfCare::Outpatient, T0)
        .await;
    c.join(group(1), ann()).await;
    c.join(group(1), bob()).await;
    let day = |d: i64| T0 + Duration::days(d);
    c.session(
        group(1),
        session(1),
        day(5),
        &[(ann(), Absent), (bob(), Absent)],
    )
    .await;
    c.session(
        group(1),
        session(2),
        day(6),
        &[(ann(), Absent), (bob(), Absent)],
    )
    .await;
    catch_up_all(&pool).await;
    let clinic = north();
    let g = group(1);
    let both = vec![(g, ann(), 2), (g, bob(), 2)];
    assert_eq!(
        stopped_attending_by_the_read_model(&pool, &clinic).await,
        both
    );

    c.leave(group(1), ann()).await;
    c.group(
        group(1),
        JoinGroup {
            member: ann(),
            member_stage: Some(Stage::InTreatment),
            at: day(40),
        },
    )
    .await;
    catch_up_all(&pool).await;
    let rejoined = vec![(g, bob(), 2)];
    assert_eq!(
        stopped_attending_by_the_domain(&pool, &clinic).await,
        rejoined
    );
    assert_eq!(
        stopped_attending_by_the_read_model(&pool, &clinic).await,
        rejoined,
        "Ann's absences before she left do not count after she rejoined"
    );

    c.session(
        group(1),
        session(3),
        day(41),
        &[(ann(), Absent), (bob(), Excused)],
    )
    .await;
    catch_up_all(&pool).await;
    assert_eq!(
        stopped_attending_by_the_read_model(&pool, &clinic).await,
        rejoined
    );

    c.session(
        group(1),
        session(4),
        day(42),
        &[(ann(), Absent), (bob(), Absent)],
    )
    .await;
    c.session(
        group(1),
        session(5),
        day(43),
        &[(ann(), Late), (bob(), Absent)],
    )
    .await;
    catch_up_all(&pool).await;
    let expected = vec![(g, bob(), 4)];
    assert_eq!(
        stopped_attending_by_the_domain(&pool, &clinic).await,
        expected
    );
    assert_eq!(
        stopped_attending_by_the_read_model(&pool, &clinic).await,
        expected
    );

    // A correction after the fact ends Bob's run at the session it corrects.
    c.correct(group(1), session(4), bob(), Present).await;
    catch_up_all(&pool).await;
    assert_eq!(
        stopped_attending_by_the_read_model(&pool, &clinic).await,
        []
    );
}

/// What each member's summary and check-ins say, by member: (name and email, stage, missed
/// run, check-ins as (id, status, closed by discharge) in id order).
type MemberFacts = BTreeMap<Uuid, (Contact, String, i64, Vec<(Uuid, String, bool)>)>;

/// A member's name and email address.
type Contact = (String, Option<String>);

/// The domain's fold of every member stream of `clinic`.
async fn members_by_the_domain(pool: &PgPool, clinic: &ClinicId) -> MemberFacts {
    let mut facts = BTreeMap::new();
    for (member, events) in streams_of::<MemberEvent>(pool, clinic, "member").await {
        let state = MemberState::from_events(&events);
        let mut check_ins: Vec<_> = state
            .check_ins()
            .iter()
            .map(|c| {
                (
                    c.id.as_uuid(),
                    c.status.as_str().to_owned(),
                    c.closed_by_discharge,
                )
            })
            .collect();
        check_ins.sort();
        facts.insert(
            member,
            (
                (
                    state.name().unwrap().to_owned(),
                    state.email().map(str::to_owned),
                ),
                state.stage().unwrap().as_str().to_owned(),
                i64::from(state.consecutive_missed_check_ins()),
                check_ins,
            ),
        );
    }
    facts
}

/// The same facts from the members read model.
async fn members_by_the_read_model(pool: &PgPool, clinic: &ClinicId) -> MemberFacts {
    let summaries: Vec<(Uuid, String, Option<String>, String, i32)> = sqlx::query_as(
        "SELECT member_id, name, email, stage, consecutive_missed_check_ins FROM member_summaries
          WHERE clinic = $1",
    )
    .bind(clinic.as_str())
    .fetch_all(pool)
    .await
    .unwrap();
    let check_ins: Vec<(Uuid, Uuid, String, bool)> = sqlx::query_as(
        "SELECT member_id, check_in_id, status, closed_by_discharge FROM member_check_ins
          WHERE clinic = $1 ORDER BY check_in_id",
    )
    .bind(clinic.as_str())
    .fetch_all(pool)
    .await
    .unwrap();
    let mut facts: MemberFacts = summaries
        .into_iter()
        .map(|(member, name, email, stage, run)| {
            (member, ((name, email), stage, i64::from(run), Vec::new()))
        })
        .collect();
    for (member, id, status, closed) in check_ins {
        facts.get_mut(&member).unwrap().3.push((id, status, closed));
    }
    facts
}

/// On a simulated clinic (joins, leaves, excused and corrected attendance, missed check-ins,
/// discharges, readmissions, new addresses), the read models say what the domain's fold of each
/// stream says: the stopped-attending list, and each member's name and email, stage, run of
/// missed check-ins and check-ins.
/// (The simulation resolves every check-in before a discharge; closing open ones is checked by
/// the fold's tests and the scheduler's.)
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn the_read_models_agree_with_the_domain_on_a_simulated_clinic(pool: PgPool) {
    // A seed whose clinic has members past the stopped-attending threshold (checked below: a
    // simulation without them would compare little).
    seeded_demo_log(&pool, "north", 400, 120, 2).await;
    catch_up_all(&pool).await;
    let clinic = north();
    let expected = stopped_attending_by_the_domain(&pool, &clinic).await;
    assert!(
        expected.len() >= 3,
        "the simulated clinic flags members: {expected:?}"
    );
    assert!(
        expected.iter().any(|(_, _, run)| *run > 2),
        "and some runs go past the threshold: {expected:?}"
    );
    assert_eq!(
        stopped_attending_by_the_read_model(&pool, &clinic).await,
        expected
    );

    let expected = members_by_the_domain(&pool, &clinic).await;
    let discharged_after_misses = expected
        .values()
        .filter(|(_, stage, run, check_ins)| {
            stage != "in_treatment" && *run == 0 && check_ins.iter().any(|c| c.1 == "missed")
        })
        .count();
    assert!(
        discharged_after_misses >= 10,
        "the simulated clinic discharges members who had missed check-ins: {discharged_after_misses}"
    );
    let moved: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE type = 'MemberDetailsChanged'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        moved >= 5,
        "the simulated clinic changes members' addresses: {moved}"
    );
    let folded = members_by_the_read_model(&pool, &clinic).await;
    assert_eq!(folded.len(), expected.len());
    for (member, facts) in &expected {
        assert_eq!(folded.get(member), Some(facts), "member {member}");
    }
}

/// The schemas of rebuilds in progress or left behind.
async fn shadow_schemas(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'rebuild\\_%' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The shadow tables of a rebuild whose process died hold personal fields no erasure reaches
/// (it scrubs the live tables): the next `clinic serve` drops them.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn an_unfinished_rebuilds_tables_are_dropped(pool: PgPool) {
    for projection in ["members", "groups"] {
        sqlx::query("SELECT prepare_read_model_rebuild($1)")
            .bind(projection)
            .execute(&pool)
            .await
            .unwrap();
    }
    assert_eq!(
        shadow_schemas(&pool).await,
        ["rebuild_groups", "rebuild_members"]
    );
    projections::drop_abandoned_rebuilds(&pool).await.unwrap();
    assert_eq!(shadow_schemas(&pool).await, Vec::<String>::new());
}

/// An event a fold cannot store (here a check-in due in year 10000 once in UTC, appended past
/// the API's checks as a release without them could have) makes applying its page panic. The
/// runner survives it: nothing of the page is stored, the checkpoint stays before the event,
/// and the task keeps retrying until it is stopped, instead of ending with the panic.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_page_that_panics_is_retried_and_the_runner_lives_on(pool: PgPool) {
    let mut c = scripted_clinic(&pool).await;
    let before = c.last_position;
    c.schedule_check_in(
        ann(),
        check_in(9),
        time::macros::datetime!(9999-12-31 23:00 -05:00),
    )
    .await;
    let poisoned = c.last_position;
    let projection = ProjectionName::Members;
    let (stop, stopped) = watch::channel(false);
    let runner = tokio::spawn(projections::run(
        pool.clone(),
        keyring(&pool),
        projection,
        // A page per event, so the checkpoint can stop just before the bad one.
        options(1),
        stopped,
    ));
    // Everything before the event is applied (commit-safe readers may wait for other tests'
    // transactions on the server), then the event fails many times (a retry every 50 ms).
    let last_good: i64 = sqlx::query_scalar("SELECT max(position) FROM events WHERE position < $1")
        .bind(poisoned)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(last_good >= before);
    let fresh = wait_until_caught_up(&pool, &[projection], last_good, StdDuration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(fresh, Freshness::CaughtUp);
    tokio::time::sleep(StdDuration::from_secs(1)).await;
    assert!(!runner.is_finished(), "the runner lives on");
    assert_eq!(
        checkpoint(&pool, projection).await,
        last_good,
        "everything before the event, nothing of it"
    );
    stop.send(true).unwrap();
    tokio::time::timeout(StdDuration::from_secs(30), runner)
        .await
        .expect("stops when asked")
        .expect("and ends without a panic");
}
