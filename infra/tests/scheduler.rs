//! The scheduler against a real PostgreSQL: time turned into events, exactly once.
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "support/clinic.rs"]
mod support;

use std::time::Duration as StdDuration;

use clinic_domain::member::EraseMember;
use clinic_domain::values::{CheckInStatus, DischargeReason, FollowUpStatus, LevelOfCare, Text};
use clinic_domain::{aftercare, MemberId};
use clinic_infra::clinic::ClinicId;
use clinic_infra::event_store::EventStore;
use clinic_infra::projections::{self, ProjectionName};
use clinic_infra::read_models;
use clinic_infra::scheduler::{self, Scheduler, SchedulerOptions, TickReport};
use sqlx::PgPool;
use support::{
    catch_up_all, check_in, keyring, member, newer_release_migrates, options, Clinic, T0,
};
use time::{Duration, OffsetDateTime};
use tokio::sync::watch;

const NOW: OffsetDateTime = T0.saturating_add(Duration::days(40));

fn ann() -> MemberId {
    member(1)
}
fn bob() -> MemberId {
    member(2)
}

fn north() -> ClinicId {
    ClinicId::parse("north").unwrap()
}

fn scheduler(pool: &PgPool) -> Scheduler {
    Scheduler::new(EventStore::new(pool.clone()), keyring(pool), 500)
}

/// A scheduler that ticks, and takes over, every 20 ms.
fn quick_ticks() -> SchedulerOptions {
    SchedulerOptions {
        tick: StdDuration::from_millis(20),
        per_tick: 100,
        standby_retry: StdDuration::from_millis(20),
        check_in_grace: StdDuration::ZERO,
    }
}

/// How many events of `event_type` the log holds, and whether the scheduler recorded them all.
async fn recorded(pool: &PgPool, event_type: &str) -> (i64, bool) {
    sqlx::query_as(
        "SELECT count(*), coalesce(bool_and(metadata->>'actor' = 'system:scheduler'), true)
           FROM events WHERE type = $1",
    )
    .bind(event_type)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Ann: two check-ins overdue at NOW, one due later, one completed in time. Bob: discharged
/// (completed) 10 days before NOW, recorded only now: his day-7 follow-up is already due.
async fn clinic_with_due_items(pool: &PgPool) -> Clinic {
    let mut c = Clinic::new(pool, "north");
    c.admitted(ann(), "Ann Archer", LevelOfCare::Outpatient, T0)
        .await;
    c.admitted(bob(), "Bob Baker", LevelOfCare::Outpatient, T0)
        .await;
    c.schedule_check_in(ann(), check_in(1), NOW - Duration::days(2))
        .await;
    c.schedule_check_in(ann(), check_in(2), NOW - Duration::hours(1))
        .await;
    c.schedule_check_in(ann(), check_in(3), NOW + Duration::days(3))
        .await;
    c.schedule_check_in(ann(), check_in(4), NOW - Duration::days(1))
        .await;
    c.complete_check_in(
        ann(),
        check_in(4),
        NOW - Duration::days(1) - Duration::hours(2),
    )
    .await;
    c.discharge(bob(), DischargeReason::Completed, NOW - Duration::days(10))
        .await;
    c
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn overdue_check_ins_and_due_follow_ups_are_marked_exactly_once_across_restarts_and_two_instances(
    pool: PgPool,
) {
    clinic_with_due_items(&pool).await;
    catch_up_all(&pool).await;

    // Two instances tick at the same moment, then a restarted one ticks again before the read
    // models have caught up (they still list the same items as due).
    let (one, two) = (scheduler(&pool), scheduler(&pool));
    let (first, second) = tokio::join!(one.tick(NOW), two.tick(NOW));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(
        first.check_ins_missed + second.check_ins_missed,
        2,
        "{first:?} {second:?}"
    );
    assert_eq!(first.follow_ups_due + second.follow_ups_due, 1);
    let restarted = scheduler(&pool).tick(NOW).await.unwrap();
    assert_eq!(
        restarted,
        TickReport {
            unchanged: 3,
            ..TickReport::default()
        }
    );
    assert_eq!(recorded(&pool, "CheckInMissed").await, (2, true));
    assert_eq!(recorded(&pool, "FollowUpDue").await, (1, true));

    // Once the read models have caught up, nothing is due until time moves on.
    catch_up_all(&pool).await;
    assert_eq!(
        scheduler(&pool).tick(NOW).await.unwrap(),
        TickReport::default()
    );
    let check_ins = read_models::check_ins_of_members(&pool, &north(), &[ann()])
        .await
        .unwrap();
    let statuses: Vec<CheckInStatus> = check_ins.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        vec![
            CheckInStatus::Missed,
            CheckInStatus::Completed,
            CheckInStatus::Missed,
            CheckInStatus::Scheduled
        ]
    );
    let outreach = read_models::outreach_items(
        &pool,
        &north(),
        Some("counselor-kim"),
        &read_models::PageRequest::first(50),
    )
    .await
    .unwrap();
    assert_eq!(
        outreach.total_count, 1,
        "two missed in a row open an outreach item"
    );

    // Three weeks on: the last check-in and Bob's day-30 follow-up.
    let later = NOW + Duration::days(21);
    let report = scheduler(&pool).tick(later).await.unwrap();
    assert_eq!((report.check_ins_missed, report.follow_ups_due), (1, 1));
    catch_up_all(&pool).await;
    assert_eq!(
        scheduler(&pool).tick(later).await.unwrap(),
        TickReport::default()
    );
    let due = read_models::follow_ups_due(&pool, &north(), 0, later)
        .await
        .unwrap();
    let offsets: Vec<i32> = due.iter().map(|f| f.day_offset).collect();
    assert_eq!(offsets, vec![7, 30]);
    assert!(due.iter().all(|f| f.status == FollowUpStatus::Due));
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_backdated_discharge_has_every_past_follow_up_marked_due_at_the_next_tick(pool: PgPool) {
    let mut c = Clinic::new(&pool, "north");
    c.admitted(bob(), "Bob Baker", LevelOfCare::Outpatient, T0)
        .await;
    // Recorded 100 days late: days 7, 30 and 90 have all passed.
    let now = T0 + Duration::days(102);
    c.discharge(bob(), DischargeReason::Completed, T0 + Duration::days(2))
        .await;
    catch_up_all(&pool).await;
    let report = scheduler(&pool).tick(now).await.unwrap();
    assert_eq!(report.follow_ups_due, 3);
    catch_up_all(&pool).await;
    let due = read_models::follow_ups_due(&pool, &north(), 0, now)
        .await
        .unwrap();
    let ids: Vec<_> = due.iter().map(|f| f.id).collect();
    assert_eq!(
        ids,
        [7, 30, 90]
            .map(|d| aftercare::follow_up_id(bob(), 1, d))
            .to_vec()
    );
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_check_in_completed_after_the_read_model_listed_it_is_not_marked_missed(pool: PgPool) {
    let mut c = Clinic::new(&pool, "north");
    c.admitted(ann(), "Ann Archer", LevelOfCare::Outpatient, T0)
        .await;
    c.schedule_check_in(ann(), check_in(1), NOW - Duration::minutes(5))
        .await;
    catch_up_all(&pool).await;
    // The member checks in (late) before the tick; the read model has not seen it yet.
    c.complete_check_in(ann(), check_in(1), NOW - Duration::minutes(1))
        .await;
    let report = scheduler(&pool).tick(NOW).await.unwrap();
    assert_eq!(
        report,
        TickReport {
            unchanged: 1,
            ..TickReport::default()
        }
    );
    assert_eq!(recorded(&pool, "CheckInMissed").await.0, 0);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn the_running_scheduler_and_projections_record_a_check_in_missed_in_the_past(pool: PgPool) {
    let mut c = Clinic::new(&pool, "north");
    c.admitted(ann(), "Ann Archer", LevelOfCare::Outpatient, T0)
        .await;
    // Due long ago: handled at the next tick, by whichever of two processes leads.
    c.schedule_check_in(ann(), check_in(1), T0 + Duration::days(5))
        .await;

    let (stop, stopped) = watch::channel(false);
    let mut tasks = projections::spawn_runners(&pool, &keyring(&pool), &options(100), &stopped);
    for _ in 0..2 {
        tasks.push(scheduler::spawn(
            &pool,
            &keyring(&pool),
            quick_ticks(),
            &stopped,
        ));
    }
    let mut status = CheckInStatus::Scheduled;
    for _ in 0..500 {
        let check_ins = read_models::check_ins_of_members(&pool, &north(), &[ann()])
            .await
            .unwrap();
        status = check_ins
            .first()
            .map_or(CheckInStatus::Scheduled, |c| c.status);
        if status == CheckInStatus::Missed {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    assert_eq!(status, CheckInStatus::Missed);
    // A few more ticks change nothing.
    tokio::time::sleep(StdDuration::from_millis(100)).await;
    stop.send(true).unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(recorded(&pool, "CheckInMissed").await, (1, true));
    let checkpoint: i64 =
        sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE projection = $1")
            .bind(ProjectionName::Members.as_str())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(checkpoint > 0);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_scheduler_of_an_older_release_stops_when_a_newer_release_migrates(pool: PgPool) {
    let mut c = Clinic::new(&pool, "north");
    c.admitted(ann(), "Ann Archer", LevelOfCare::Outpatient, T0)
        .await;
    c.schedule_check_in(ann(), check_in(1), T0 + Duration::days(5))
        .await;
    catch_up_all(&pool).await;
    // Overdue and in the read model: this build's scheduler would record it missed at its
    // first tick (the test above), but the rules are the newer release's to apply now.
    newer_release_migrates(&pool, None).await;

    let (_stop, stopped) = watch::channel(false);
    let task = scheduler::spawn(&pool, &keyring(&pool), quick_ticks(), &stopped);
    tokio::time::timeout(StdDuration::from_secs(30), task)
        .await
        .expect("the scheduler stops by itself")
        .unwrap();
    assert_eq!(recorded(&pool, "CheckInMissed").await.0, 0);
}

/// Items the domain refuses to mark are never picked: a check-in still scheduled when its
/// member was discharged (closed with the episode), and the check-ins and follow-ups of an
/// erased member.
/// Picked, they would be refused every tick and, with enough of them, fill the batch: here a
/// batch of one still reaches the one check-in that is really overdue.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn items_the_domain_refuses_to_mark_never_take_a_ticks_place(pool: PgPool) {
    let cy = member(3);
    let mut c = Clinic::new(&pool, "north");
    c.admitted(ann(), "Ann Archer", LevelOfCare::Outpatient, T0)
        .await;
    c.schedule_check_in(ann(), check_in(1), T0 + Duration::days(20))
        .await;
    // The check-in reaches the read model in one page, the discharge that closes it in another
    // (as in production, where they are days apart).
    catch_up_all(&pool).await;
    c.discharge(
        ann(),
        DischargeReason::AgainstAdvice,
        T0 + Duration::days(10),
    )
    .await;
    c.admitted(cy, "Cy Castillo", LevelOfCare::Outpatient, T0)
        .await;
    c.discharge(cy, DischargeReason::Completed, T0 + Duration::days(2))
        .await;
    // In aftercare, Cy has a check-in coming, then asks to be erased.
    c.schedule_check_in(cy, check_in(3), T0 + Duration::days(25))
        .await;
    c.member(
        cy,
        EraseMember {
            reason: Text::parse("reason", "member request").unwrap(),
            at: T0 + Duration::days(3),
            retention_days: 0,
        },
    )
    .await;
    c.admitted(bob(), "Bob Baker", LevelOfCare::Outpatient, T0)
        .await;
    c.schedule_check_in(bob(), check_in(2), NOW - Duration::days(1))
        .await;
    catch_up_all(&pool).await;
    let closed = read_models::check_ins_of_members(&pool, &north(), &[ann(), cy])
        .await
        .unwrap()
        .iter()
        .map(|c| (c.id, c.closed_by_discharge))
        .collect::<Vec<_>>();
    assert!(closed.contains(&(check_in(1), true)), "{closed:?}");
    assert!(closed.contains(&(check_in(3), false)), "{closed:?}");

    let report = Scheduler::new(EventStore::new(pool.clone()), keyring(&pool), 1)
        .tick(NOW)
        .await
        .unwrap();
    assert_eq!(
        report,
        TickReport {
            check_ins_missed: 1,
            ..TickReport::default()
        }
    );
    let missed: Vec<(uuid::Uuid,)> = sqlx::query_as(
        "SELECT (data->>'check_in_id')::uuid FROM events WHERE type = 'CheckInMissed'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(missed, [(check_in(2).as_uuid(),)]);
    // Another tick finds nothing: neither Ann's closed check-in nor Cy's follow-ups.
    catch_up_all(&pool).await;
    let report = scheduler(&pool).tick(NOW).await.unwrap();
    assert_eq!(report, TickReport::default());
}

/// Members who leave treatment leave their treatment groups at the next tick (once, however
/// many instances tick); an alumni group keeps a member in aftercare; a member the read models
/// still show as discharged but the log shows readmitted stays.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn members_who_leave_treatment_are_taken_off_their_treatment_groups(pool: PgPool) {
    use clinic_domain::group::FormGroup;
    use clinic_domain::member::ReadmitMember;
    use clinic_domain::values::{Capacity, GroupModel};
    use support::group;

    let cy = member(3);
    let mut c = Clinic::new(&pool, "north");
    for (who, name) in [
        (ann(), "Ann Archer"),
        (bob(), "Bob Baker"),
        (cy, "Cy Carver"),
    ] {
        c.admitted(who, name, LevelOfCare::Outpatient, T0).await;
    }
    c.form_group(group(1), "Skills", "facilitator-sam").await;
    c.group(
        group(2),
        FormGroup {
            group: group(2),
            name: Text::parse("name", "Alumni circle").unwrap(),
            model: GroupModel::Support,
            facilitator: None,
            capacity: Capacity::default(),
            schedule: None,
            alumni: true,
            online: false,
            at: T0,
        },
    )
    .await;
    for who in [ann(), bob(), cy] {
        c.join(group(1), who).await;
    }
    c.join(group(2), ann()).await;
    c.discharge(ann(), DischargeReason::Completed, NOW - Duration::days(5))
        .await;
    c.discharge(
        bob(),
        DischargeReason::AgainstAdvice,
        NOW - Duration::days(5),
    )
    .await;
    catch_up_all(&pool).await;
    // Bob is back before the read models know it.
    c.member(
        bob(),
        ReadmitMember {
            level_of_care: LevelOfCare::Outpatient,
            primary_counselor: None,
            at: NOW - Duration::days(1),
        },
    )
    .await;

    let (one, two) = (scheduler(&pool), scheduler(&pool));
    let (first, second) = tokio::join!(one.tick(NOW), two.tick(NOW));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(
        first.rosters_left + second.rosters_left,
        1,
        "{first:?} {second:?}"
    );
    assert_eq!(recorded(&pool, "MemberLeft").await, (1, true));
    catch_up_all(&pool).await;
    assert_eq!(
        scheduler(&pool).tick(NOW).await.unwrap(),
        TickReport::default()
    );
    let rosters = read_models::rosters(&pool, &north(), &[group(1), group(2)])
        .await
        .unwrap();
    let on = |g| -> Vec<MemberId> {
        rosters
            .iter()
            .filter(|e| e.group_id == g)
            .map(|e| e.member_id)
            .collect()
    };
    assert_eq!(on(group(1)), [bob(), cy], "Ann left the treatment group");
    assert_eq!(on(group(2)), [ann()], "and stays in the alumni group");
}

/// A member leaves a treatment group from their discharge, backdated as it may be, or just
/// after the last recorded session that lists them: sessions recorded late for the days after
/// need not list them. (Dated at the tick, every session held since the discharge would have
/// to.)
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_member_leaves_their_groups_as_of_their_discharge(pool: PgPool) {
    use clinic_domain::values::AttendanceStatus;
    use support::{group, session};

    let mut c = Clinic::new(&pool, "north");
    for (who, name) in [(ann(), "Ann Archer"), (bob(), "Bob Baker")] {
        c.admitted(who, name, LevelOfCare::Outpatient, T0).await;
    }
    c.form_group(group(1), "Skills", "facilitator-sam").await;
    c.form_group(group(2), "Relapse prevention", "facilitator-sam")
        .await;
    c.join(group(1), ann()).await;
    c.join(group(2), bob()).await;
    let listed = NOW - Duration::days(3);
    c.session(
        group(1),
        session(1),
        listed,
        &[(ann(), AttendanceStatus::Absent)],
    )
    .await;
    let discharged = NOW - Duration::days(5);
    for who in [ann(), bob()] {
        c.discharge(who, DischargeReason::Completed, discharged)
            .await;
    }
    catch_up_all(&pool).await;
    assert_eq!(scheduler(&pool).tick(NOW).await.unwrap().rosters_left, 2);

    let mut left: Vec<(String, String)> = sqlx::query_as(
        "SELECT data->>'member_id', data->>'left_at' FROM events WHERE type = 'MemberLeft'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    left.sort();
    let rfc3339 = |at: OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let mut expected = vec![
        (ann().to_string(), rfc3339(listed + Duration::SECOND)),
        (bob().to_string(), rfc3339(discharged)),
    ];
    expected.sort();
    assert_eq!(left, expected);
}

/// A member listed in a session recorded as held later than now cannot leave before it: the
/// entry waits until that time has passed instead of being picked, and refused, every tick.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_roster_entry_the_domain_would_refuse_to_end_now_waits_for_its_time(pool: PgPool) {
    use clinic_domain::values::AttendanceStatus;
    use support::{group, session};

    let mut c = Clinic::new(&pool, "north");
    c.admitted(ann(), "Ann Archer", LevelOfCare::Outpatient, T0)
        .await;
    c.form_group(group(1), "Skills", "facilitator-sam").await;
    c.join(group(1), ann()).await;
    c.session(
        group(1),
        session(1),
        NOW + Duration::days(2),
        &[(ann(), AttendanceStatus::Present)],
    )
    .await;
    c.discharge(ann(), DischargeReason::Completed, NOW - Duration::days(1))
        .await;
    catch_up_all(&pool).await;

    assert_eq!(
        scheduler(&pool).tick(NOW).await.unwrap(),
        TickReport::default(),
        "not picked while the domain would refuse it"
    );
    let later = scheduler(&pool)
        .tick(NOW + Duration::days(3))
        .await
        .unwrap();
    assert_eq!(later.rosters_left, 1, "{later:?}");
}

/// With a grace period, a check-in is marked missed only once the grace has passed its due
/// time: one completed a few minutes late is recorded as completed.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_check_in_is_marked_missed_only_after_the_grace_period(pool: PgPool) {
    let mut c = Clinic::new(&pool, "north");
    c.admitted(ann(), "Ann Archer", LevelOfCare::Outpatient, T0)
        .await;
    c.schedule_check_in(ann(), check_in(1), NOW - Duration::minutes(10))
        .await;
    c.schedule_check_in(ann(), check_in(2), NOW - Duration::minutes(40))
        .await;
    catch_up_all(&pool).await;
    let graceful = scheduler(&pool).with_check_in_grace(StdDuration::from_secs(30 * 60));
    let report = graceful.tick(NOW).await.unwrap();
    assert_eq!(
        report.check_ins_missed, 1,
        "only the one 40 minutes late: {report:?}"
    );
    // The other is still open to be completed, as the call was made.
    c.complete_check_in(ann(), check_in(1), NOW).await;
    catch_up_all(&pool).await;
    let later = graceful.tick(NOW + Duration::hours(1)).await.unwrap();
    assert_eq!(later, TickReport::default(), "nothing left to mark");
    let statuses: Vec<CheckInStatus> = read_models::check_ins_of_members(&pool, &north(), &[ann()])
        .await
        .unwrap()
        .iter()
        .map(|c| c.status)
        .collect();
    // By due time: the one 40 minutes late first.
    assert_eq!(statuses, [CheckInStatus::Missed, CheckInStatus::Completed]);
}
