//! Given group events, when folded, then these rows: the projection's rules without a database.
#![allow(clippy::unwrap_used)]

use clinic_domain::group::{
    Attendance, AttendanceCorrected, GroupClosed, GroupFormed, MemberJoined, MemberLeft,
    SessionCancelled, SessionHeld, SessionScheduled,
};
use clinic_domain::values::{
    AttendanceStatus, Capacity, GroupModel, SessionMinutes, SessionStatus,
};
use clinic_domain::{GroupEvent, GroupId, GroupState, MemberId, SessionId};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{GroupEnvelope, GroupRows};
use crate::projections::ProjectionError;

const CLINIC: &str = "north";
const T0: OffsetDateTime = datetime!(2026-03-02 18:00 UTC);

fn group() -> GroupId {
    GroupId::new(Uuid::from_u128(0x6409))
}

fn member(n: u128) -> MemberId {
    MemberId::new(Uuid::from_u128(n))
}

fn session(n: u128) -> SessionId {
    SessionId::new(Uuid::from_u128(0x5e55_0000 + n))
}

fn envelopes(events: &[GroupEvent]) -> Vec<GroupEnvelope> {
    events
        .iter()
        .enumerate()
        .map(|(i, event)| GroupEnvelope {
            clinic: CLINIC.into(),
            id: group(),
            version: i as i64 + 1,
            position: 10 + i as i64,
            recorded_at: T0,
            event: event.clone(),
        })
        .collect()
}

fn given(events: &[GroupEvent]) -> GroupRows {
    let mut rows = GroupRows::default();
    for e in envelopes(events) {
        rows.apply(&e).unwrap();
    }
    rows
}

fn formed() -> GroupEvent {
    GroupFormed {
        group_id: group(),
        name: "Tuesday relapse prevention".into(),
        model: GroupModel::SkillsDevelopment,
        facilitator: Some("fac-lee".into()),
        capacity: Capacity::new(12).unwrap(),
        schedule: None,
        alumni: false,
        online: false,
        formed_at: T0,
    }
    .into()
}

fn joined(n: u128) -> GroupEvent {
    MemberJoined {
        member_id: member(n),
        joined_at: T0,
    }
    .into()
}

fn held(n: u128, attendance: &[(u128, AttendanceStatus)]) -> GroupEvent {
    SessionHeld {
        session_id: session(n),
        held_at: T0 + Duration::days(n as i64),
        topic: "Coping with cravings".into(),
        duration_minutes: SessionMinutes::new(90).unwrap(),
        attendance: attendance
            .iter()
            .map(|(m, status)| Attendance {
                member_id: member(*m),
                status: *status,
            })
            .collect(),
        recorded_presence_only: false,
    }
    .into()
}

use AttendanceStatus::{Absent, Excused, Late, Present};

#[test]
fn a_formed_group_has_an_empty_roster_and_no_attendance() {
    let rows = given(&[formed()]);
    let g = rows.groups.get(&(CLINIC.into(), group())).unwrap();
    assert_eq!(g.name, "Tuesday relapse prevention");
    assert_eq!(g.capacity, 12);
    assert_eq!(
        (g.roster_size, g.attended_count, g.recorded_count),
        (0, 0, 0)
    );
    assert_eq!(g.formed_position, 10);
}

#[test]
fn joining_and_leaving_change_the_roster() {
    let rows = given(&[
        formed(),
        joined(1),
        joined(2),
        MemberLeft {
            member_id: member(1),
            reason: "moved away".into(),
            left_at: T0,
        }
        .into(),
    ]);
    let roster: Vec<MemberId> = rows.roster.iter().map(|((_, _, m), _)| *m).collect();
    assert_eq!(roster, vec![member(2)]);
    assert_eq!(
        rows.groups
            .get(&(CLINIC.into(), group()))
            .unwrap()
            .roster_size,
        1
    );
}

#[test]
fn a_held_session_records_every_status_and_the_attendance_rate() {
    let rows = given(&[
        formed(),
        joined(1),
        joined(2),
        joined(3),
        held(1, &[(1, Present), (2, Late), (3, Absent)]),
    ]);
    let g = rows.groups.get(&(CLINIC.into(), group())).unwrap();
    assert_eq!((g.attended_count, g.recorded_count), (2, 3));
    let s = rows.sessions.get(&(CLINIC.into(), session(1))).unwrap();
    assert_eq!(s.status, SessionStatus::Held);
    assert_eq!(s.held_at, Some(T0 + Duration::days(1)));
    let absent = rows
        .attendance
        .get(&(CLINIC.into(), session(1), member(3)))
        .unwrap();
    assert_eq!(absent.status, Absent);
}

#[test]
fn a_correction_replaces_the_status_and_moves_the_rate() {
    let rows = given(&[
        formed(),
        joined(1),
        held(1, &[(1, Absent)]),
        AttendanceCorrected {
            session_id: session(1),
            member_id: member(1),
            from: Absent,
            to: Excused,
            reason: "called in sick".into(),
            corrected_at: T0 + Duration::days(2),
        }
        .into(),
        AttendanceCorrected {
            session_id: session(1),
            member_id: member(1),
            from: Excused,
            to: Late,
            reason: "arrived after roll call".into(),
            corrected_at: T0 + Duration::days(2),
        }
        .into(),
    ]);
    let record = rows
        .attendance
        .get(&(CLINIC.into(), session(1), member(1)))
        .unwrap();
    assert_eq!(record.status, Late);
    let g = rows.groups.get(&(CLINIC.into(), group())).unwrap();
    assert_eq!((g.attended_count, g.recorded_count), (1, 1));
}

#[test]
fn the_attendance_rate_equals_the_domains_after_any_corrections() {
    let events = vec![
        formed(),
        joined(1),
        joined(2),
        held(1, &[(1, Present), (2, Absent)]),
        held(2, &[(1, Excused), (2, Absent)]),
        AttendanceCorrected {
            session_id: session(2),
            member_id: member(2),
            from: Absent,
            to: Present,
            reason: "misrecorded".into(),
            corrected_at: T0 + Duration::days(3),
        }
        .into(),
        held(3, &[(1, Late), (2, Present)]),
    ];
    let rows = given(&events);
    let g = rows.groups.get(&(CLINIC.into(), group())).unwrap();
    let ours = g.attended_count as f64 / g.recorded_count as f64;
    let domain = GroupState::from_events(&events).attendance_rate();
    assert!((ours - domain).abs() < 1e-12, "{ours} vs {domain}");
}

#[test]
fn a_scheduled_session_keeps_its_start_when_held_and_cancelling_marks_it() {
    let rows = given(&[
        formed(),
        SessionScheduled {
            session_id: session(1),
            starts_at: T0 + Duration::days(1),
            topic: "Planned".into(),
        }
        .into(),
        SessionScheduled {
            session_id: session(2),
            starts_at: T0 + Duration::days(2),
            topic: "Planned".into(),
        }
        .into(),
        held(1, &[]),
        SessionCancelled {
            session_id: session(2),
            reason: "facilitator ill".into(),
            cancelled_at: T0,
        }
        .into(),
        GroupClosed {
            reason: "programme ended".into(),
            closed_at: T0,
        }
        .into(),
    ]);
    let one = rows.sessions.get(&(CLINIC.into(), session(1))).unwrap();
    assert_eq!(one.starts_at, Some(T0 + Duration::days(1)));
    assert_eq!(one.recorded_position, 11);
    assert_eq!(one.topic, "Coping with cravings");
    let two = rows.sessions.get(&(CLINIC.into(), session(2))).unwrap();
    assert_eq!(two.status, SessionStatus::Cancelled);
    assert!(rows.groups.get(&(CLINIC.into(), group())).unwrap().closed);
}

#[test]
fn an_event_of_a_group_never_formed_is_an_error_for_the_runner() {
    let mut rows = GroupRows::default();
    let e = &envelopes(&[joined(1)])[0];
    assert!(matches!(
        rows.apply(e),
        Err(ProjectionError::MissingRow {
            entity: "group",
            ..
        })
    ));
}

#[test]
fn a_session_recorded_by_schema_v1_counts_the_rest_of_the_roster_absent() {
    // v1 listed who was present; the upcaster marks the event, and the fold fills in the
    // absences the way the domain's state does.
    let mut v1 = held(1, &[(1, Present)]);
    if let GroupEvent::SessionHeld(s) = &mut v1 {
        s.recorded_presence_only = true;
    }
    let events = [formed(), joined(1), joined(2), joined(3), v1];
    // The loader replays the stream for the roster on the session's day (store.rs).
    let mut rows = GroupRows::default();
    let before = GroupState::from_events(&events[..4]);
    rows.rosters_at_v1_sessions.insert(
        (CLINIC.into(), group(), 5),
        before.roster_at(T0 + Duration::days(1)),
    );
    for e in envelopes(&events) {
        rows.apply(&e).unwrap();
    }
    for m in [2, 3] {
        let record = rows
            .attendance
            .get(&(CLINIC.into(), session(1), member(m)))
            .unwrap();
        assert_eq!(record.status, Absent, "member {m}");
    }
    let g = rows.groups.get(&(CLINIC.into(), group())).unwrap();
    assert_eq!((g.attended_count, g.recorded_count), (1, 3));
    let domain = GroupState::from_events(&events);
    let session = domain
        .sessions()
        .iter()
        .find(|s| s.id == session(1))
        .unwrap();
    assert_eq!(session.attendance.len(), 3, "the domain agrees");
}
