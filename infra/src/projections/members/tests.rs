//! Given member events, when folded, then these rows: the projection's rules without a database.
#![allow(clippy::unwrap_used)]

use clinic_domain::member::{
    AftercareStarted, CheckInCompleted, CheckInMissed, CheckInScheduled, FollowUpCompleted,
    FollowUpDue, IntakeCompleted, LevelOfCareChanged, MemberAdmitted, MemberDetailsChanged,
    MemberDischarged, MemberErased, MemberReadmitted, MemberReferred, PlannedFollowUp,
};
use clinic_domain::values::{
    AftercarePlan, CheckInChannel, CheckInStatus, Craving, DischargeReason, FollowUpOutcome,
    FollowUpStatus, LevelOfCare, Mood, ReferralSource, Stage,
};
use clinic_domain::{aftercare, CheckInId, MemberEvent, MemberId, MemberState};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{MemberEnvelope, MemberRows, ERASED_NAME};
use crate::projections::ProjectionError;

const CLINIC: &str = "north";
const T0: OffsetDateTime = datetime!(2026-03-02 09:00 UTC);

fn ann() -> MemberId {
    MemberId::new(Uuid::from_u128(0xA11))
}

fn envelopes(member: MemberId, events: Vec<MemberEvent>) -> Vec<MemberEnvelope> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| MemberEnvelope {
            clinic: CLINIC.into(),
            id: member,
            version: i as i64 + 1,
            position: 100 + i as i64,
            recorded_at: T0 + Duration::minutes(i as i64),
            event,
        })
        .collect()
}

/// Given these events of Ann's stream, folded from empty rows.
fn given(events: Vec<MemberEvent>) -> MemberRows {
    let mut rows = MemberRows::default();
    for e in envelopes(ann(), events) {
        rows.apply(&e).unwrap();
    }
    rows
}

fn referred() -> MemberEvent {
    MemberReferred {
        member_id: ann(),
        name: "Ann Example".into(),
        email: Some("ann@example.org".into()),
        phone: None,
        source: ReferralSource::Court,
        primary_substance: None,
        referred_at: T0,
    }
    .into()
}

fn intake() -> MemberEvent {
    IntakeCompleted {
        assessed_by: "dr-ray".into(),
        recommended_level: LevelOfCare::Residential,
        completed_at: T0 + Duration::days(1),
    }
    .into()
}

fn admitted(level: LevelOfCare) -> MemberEvent {
    MemberAdmitted {
        level_of_care: level,
        primary_counselor: Some("counselor-kim".into()),
        admitted_at: T0 + Duration::days(2),
    }
    .into()
}

fn scheduled(n: u128, due_at: OffsetDateTime) -> MemberEvent {
    CheckInScheduled {
        check_in_id: CheckInId::new(Uuid::from_u128(n)),
        due_at,
        channel: CheckInChannel::App,
    }
    .into()
}

fn missed(n: u128, due_at: OffsetDateTime) -> MemberEvent {
    CheckInMissed {
        check_in_id: CheckInId::new(Uuid::from_u128(n)),
        due_at,
    }
    .into()
}

fn completed(n: u128) -> MemberEvent {
    CheckInCompleted {
        check_in_id: CheckInId::new(Uuid::from_u128(n)),
        mood: Mood::new(4).unwrap(),
        craving: Craving::new(2).unwrap(),
        used: false,
        completed_at: T0 + Duration::days(3),
    }
    .into()
}

fn discharged_completed(episode: u32, at: OffsetDateTime) -> Vec<MemberEvent> {
    let follow_ups: Vec<PlannedFollowUp> = aftercare::plan_follow_ups(
        ann(),
        episode,
        at,
        &aftercare::DEFAULT_FOLLOW_UP_OFFSETS_DAYS,
    )
    .unwrap();
    vec![
        MemberDischarged {
            reason: DischargeReason::Completed,
            discharged_at: at,
        }
        .into(),
        AftercareStarted {
            plan: AftercarePlan::AlumniGroup,
            follow_ups,
            started_at: at,
        }
        .into(),
    ]
}

fn readmitted(at: OffsetDateTime) -> MemberEvent {
    MemberReadmitted {
        level_of_care: LevelOfCare::Residential,
        primary_counselor: None,
        readmitted_at: at,
    }
    .into()
}

#[track_caller]
fn assert_board(rows: &MemberRows, expected: &[(Stage, Option<LevelOfCare>, i64)]) {
    let got: Vec<(Stage, Option<LevelOfCare>, i64)> = rows
        .pipeline
        .iter()
        .filter(|(_, n)| **n != 0)
        .map(|((_, s, l), n)| (*s, *l, *n))
        .collect();
    assert_eq!(got, expected, "pipeline counter changes");
}

#[test]
fn a_referral_creates_a_summary_in_the_referred_column() {
    let rows = given(vec![referred()]);
    let ann_row = rows.members.get(&(CLINIC.into(), ann())).unwrap();
    assert_eq!(ann_row.name, "Ann Example");
    assert_eq!(ann_row.stage, Stage::Referred);
    assert_eq!(ann_row.version, 1);
    assert_eq!(ann_row.referred_position, 100);
    assert_board(&rows, &[(Stage::Referred, None, 1)]);
}

#[test]
fn admission_moves_the_member_to_in_treatment_at_its_level() {
    let rows = given(vec![
        referred(),
        intake(),
        admitted(LevelOfCare::Residential),
    ]);
    let ann_row = rows.members.get(&(CLINIC.into(), ann())).unwrap();
    assert_eq!(ann_row.stage, Stage::InTreatment);
    assert_eq!(ann_row.level_of_care, Some(LevelOfCare::Residential));
    assert_eq!(ann_row.primary_counselor.as_deref(), Some("counselor-kim"));
    assert_eq!(ann_row.version, 3);
    assert_board(
        &rows,
        &[(Stage::InTreatment, Some(LevelOfCare::Residential), 1)],
    );
}

#[test]
fn a_step_down_moves_the_member_between_levels_on_the_board() {
    let rows = given(vec![
        referred(),
        intake(),
        admitted(LevelOfCare::Residential),
        LevelOfCareChanged {
            from: LevelOfCare::Residential,
            to: LevelOfCare::IntensiveOutpatient,
            reason: "stepping down".into(),
            changed_at: T0 + Duration::days(20),
        }
        .into(),
    ]);
    assert_board(
        &rows,
        &[(
            Stage::InTreatment,
            Some(LevelOfCare::IntensiveOutpatient),
            1,
        )],
    );
}

#[test]
fn missed_check_ins_count_until_one_is_completed() {
    let due = T0 + Duration::days(3);
    let rows = given(vec![
        referred(),
        intake(),
        admitted(LevelOfCare::Outpatient),
        scheduled(1, due),
        scheduled(2, due),
        scheduled(3, due),
        missed(1, due),
        missed(2, due),
    ]);
    let ann_row = rows.members.get(&(CLINIC.into(), ann())).unwrap();
    assert_eq!(ann_row.consecutive_missed_check_ins, 2);
    assert_eq!(ann_row.last_missed_due_at, Some(due));
    assert_eq!(status_of(&rows, 1), CheckInStatus::Missed);
    assert_eq!(status_of(&rows, 3), CheckInStatus::Scheduled);

    let mut rows = rows;
    let mut next = envelopes(ann(), vec![completed(3)]).remove(0);
    next.version = 9;
    rows.apply(&next).unwrap();
    let ann_row = rows.members.get(&(CLINIC.into(), ann())).unwrap();
    assert_eq!(ann_row.consecutive_missed_check_ins, 0);
    assert_eq!(status_of(&rows, 3), CheckInStatus::Completed);
}

fn status_of(rows: &MemberRows, n: u128) -> CheckInStatus {
    rows.check_ins
        .get(&(CLINIC.into(), CheckInId::new(Uuid::from_u128(n))))
        .unwrap()
        .status
}

#[test]
fn a_check_in_the_member_does_not_have_is_ignored_like_the_domain_does() {
    let rows = given(vec![referred(), completed(42)]);
    assert!(rows
        .check_ins
        .get(&(CLINIC.into(), CheckInId::new(Uuid::from_u128(42))))
        .is_none());
    assert_eq!(
        rows.members.get(&(CLINIC.into(), ann())).unwrap().version,
        2
    );
}

#[test]
fn a_completed_discharge_plans_the_follow_ups_and_starts_aftercare() {
    let at = T0 + Duration::days(40);
    let mut events = vec![referred(), intake(), admitted(LevelOfCare::Outpatient)];
    events.extend(discharged_completed(1, at));
    let rows = given(events);
    let ann_row = rows.members.get(&(CLINIC.into(), ann())).unwrap();
    assert_eq!(ann_row.stage, Stage::Aftercare);
    assert_eq!(ann_row.level_of_care, None);
    let planned: Vec<(i32, OffsetDateTime, FollowUpStatus)> = rows
        .follow_ups
        .iter()
        .map(|(_, f)| (f.day_offset, f.due_at, f.status))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        planned,
        [7, 30, 90, 180, 365]
            .map(|d| (
                d,
                at + Duration::days(i64::from(d)),
                FollowUpStatus::Planned
            ))
            .to_vec()
    );
    assert_board(&rows, &[(Stage::Aftercare, None, 1)]);
}

#[test]
fn readmission_drops_the_previous_episodes_follow_ups_not_yet_due() {
    let at = T0 + Duration::days(40);
    let day7 = aftercare::follow_up_id(ann(), 1, 7);
    let day30 = aftercare::follow_up_id(ann(), 1, 30);
    let mut events = vec![referred(), intake(), admitted(LevelOfCare::Outpatient)];
    events.extend(discharged_completed(1, at));
    events.push(
        FollowUpDue {
            follow_up_id: day7,
            day_offset: 7,
            due_at: at + Duration::days(7),
        }
        .into(),
    );
    events.push(readmitted(at + Duration::days(20)));
    let rows = given(events.clone());

    let kept: Vec<_> = rows.follow_ups.iter().map(|((_, id), _)| *id).collect();
    assert_eq!(kept, vec![day7], "only the follow-up already due stays");
    assert!(rows.follow_ups.deletes().any(|(_, id)| *id == day30));

    // The domain's own state agrees.
    let state = MemberState::from_events(&events);
    let domain: Vec<_> = state.follow_ups().iter().map(|f| f.id).collect();
    assert_eq!(domain, kept);
}

#[test]
fn a_discharge_closes_the_open_check_ins_and_restarts_the_missed_run_as_the_domain_does() {
    let due = T0 + Duration::days(3);
    let at = T0 + Duration::days(10);
    let mut events = vec![
        referred(),
        intake(),
        admitted(LevelOfCare::Outpatient),
        scheduled(1, due),
        scheduled(2, due),
        scheduled(3, at + Duration::days(5)),
        missed(1, due),
        missed(2, due),
    ];
    events.extend(discharged_completed(1, at));
    let rows = given(events.clone());
    let row = rows.members.get(&(CLINIC.into(), ann())).unwrap();
    assert_eq!(
        row.consecutive_missed_check_ins, 0,
        "no outreach after discharge"
    );
    let closed = |rows: &MemberRows, n: u128| {
        let key = (CLINIC.into(), CheckInId::new(Uuid::from_u128(n)));
        let check_in = rows.check_ins.get(&key).unwrap();
        (check_in.status, check_in.closed_by_discharge)
    };
    assert_eq!(closed(&rows, 2), (CheckInStatus::Missed, false));
    assert_eq!(closed(&rows, 3), (CheckInStatus::Scheduled, true));

    // Readmitted: one missed check-in of the new episode is a run of one, and a check-in
    // scheduled now is open; the old one stays closed.
    events.push(readmitted(at + Duration::days(20)));
    events.push(scheduled(4, at + Duration::days(22)));
    events.push(missed(4, at + Duration::days(22)));
    events.push(scheduled(5, at + Duration::days(25)));
    let rows = given(events.clone());
    let row = rows.members.get(&(CLINIC.into(), ann())).unwrap();
    let state = MemberState::from_events(&events);
    assert_eq!(row.consecutive_missed_check_ins, 1);
    assert_eq!(
        u32::try_from(row.consecutive_missed_check_ins).unwrap(),
        state.consecutive_missed_check_ins()
    );
    assert_eq!(closed(&rows, 3), (CheckInStatus::Scheduled, true));
    assert_eq!(closed(&rows, 5), (CheckInStatus::Scheduled, false));
    let domain: Vec<_> = state
        .check_ins()
        .iter()
        .map(|c| (c.id, c.status, c.closed_by_discharge))
        .collect();
    let folded: Vec<_> = (1..=5)
        .map(|n| {
            let (status, closed) = closed(&rows, n);
            (CheckInId::new(Uuid::from_u128(n)), status, closed)
        })
        .collect();
    assert_eq!(folded, domain);

    // Discharged again, then a check-in missed in aftercare: a readmission starts the run
    // again.
    events.extend(discharged_completed(2, at + Duration::days(30)));
    events.push(scheduled(6, at + Duration::days(35)));
    events.push(missed(6, at + Duration::days(35)));
    let rows = given(events.clone());
    let run = |rows: &MemberRows| {
        rows.members
            .get(&(CLINIC.into(), ann()))
            .unwrap()
            .consecutive_missed_check_ins
    };
    assert_eq!(run(&rows), 1, "missed in aftercare");
    events.push(readmitted(at + Duration::days(40)));
    let rows = given(events.clone());
    assert_eq!(run(&rows), 0);
    assert_eq!(
        MemberState::from_events(&events).consecutive_missed_check_ins(),
        0
    );
}

#[test]
fn a_follow_up_outcome_is_recorded_on_its_row() {
    let at = T0 + Duration::days(40);
    let day7 = aftercare::follow_up_id(ann(), 1, 7);
    let mut events = vec![referred(), intake(), admitted(LevelOfCare::Outpatient)];
    events.extend(discharged_completed(1, at));
    events.push(
        FollowUpCompleted {
            follow_up_id: day7,
            outcome: FollowUpOutcome::Abstinent,
            completed_at: at + Duration::days(8),
        }
        .into(),
    );
    let rows = given(events);
    let row = rows.follow_ups.get(&(CLINIC.into(), day7)).unwrap();
    assert_eq!(row.status, FollowUpStatus::Completed);
    assert_eq!(row.outcome, Some(FollowUpOutcome::Abstinent));
}

#[test]
fn a_change_of_details_renames_the_member_and_changes_their_address() {
    let changed = MemberDetailsChanged {
        name: "Ann Okafor".into(),
        email: None,
        phone: Some("+1 555 010 9999".into()),
        changed_at: T0 + Duration::days(2),
    };
    let rows = given(vec![referred(), intake(), changed.clone().into()]);
    let row = rows.members.get(&(CLINIC.into(), ann())).unwrap();
    assert_eq!(
        (row.name.as_str(), row.email.as_deref()),
        ("Ann Okafor", None)
    );
    assert_eq!(row.stage, Stage::Intake);

    // Nothing brings the details of an erased member back (decide records no change after an
    // erasure; a log that holds one anyway must not undo the scrub).
    let rows = given(vec![
        referred(),
        MemberErased {
            reason: "member request".into(),
            erased_at: T0 + Duration::days(1),
        }
        .into(),
        changed.into(),
    ]);
    let row = rows.members.get(&(CLINIC.into(), ann())).unwrap();
    assert_eq!(
        (row.name.as_str(), row.email.as_deref()),
        (ERASED_NAME, None)
    );
}

#[test]
fn erasure_scrubs_the_name_email_and_counselor_but_keeps_the_counts() {
    let rows = given(vec![
        referred(),
        intake(),
        admitted(LevelOfCare::Outpatient),
        MemberDischarged {
            reason: DischargeReason::AgainstAdvice,
            discharged_at: T0 + Duration::days(9),
        }
        .into(),
        MemberErased {
            reason: "member request".into(),
            erased_at: T0 + Duration::days(3000),
        }
        .into(),
    ]);
    let ann_row = rows.members.get(&(CLINIC.into(), ann())).unwrap();
    assert!(ann_row.erased);
    assert_eq!(ann_row.name, ERASED_NAME);
    assert_eq!(ann_row.email, None);
    assert_eq!(ann_row.primary_counselor, None);
    assert_board(&rows, &[(Stage::Discharged, None, 1)]);
}

#[test]
fn an_event_of_a_member_never_referred_is_an_error_for_the_runner() {
    let mut rows = MemberRows::default();
    let e = &envelopes(ann(), vec![intake()])[0];
    assert!(matches!(
        rows.apply(e),
        Err(ProjectionError::MissingRow {
            entity: "member",
            ..
        })
    ));
}
