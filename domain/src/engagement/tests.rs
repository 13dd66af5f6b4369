#![allow(clippy::unwrap_used)]

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::*;
use crate::group::{
    Attendance, AttendanceCorrected, GroupFormed, GroupState, MemberJoined, MemberLeft, SessionHeld,
};
use crate::ids::{CheckInId, GroupId, MemberId, SessionId};
use crate::member::{CheckInCompleted, CheckInMissed};
use crate::values::{AttendanceStatus::*, Capacity, Craving, GroupModel, Mood, SessionMinutes};

/// Day `n`, 18:00 UTC (day 0 is 2026-03-02).
fn day(n: i64) -> OffsetDateTime {
    datetime!(2026-03-02 18:00 UTC) + Duration::days(n)
}

fn ann() -> MemberId {
    MemberId::new(Uuid::from_u128(1))
}

fn bob() -> MemberId {
    MemberId::new(Uuid::from_u128(2))
}

fn formed(group: u128) -> GroupEvent {
    GroupFormed {
        group_id: GroupId::new(Uuid::from_u128(group)),
        name: "g".into(),
        model: GroupModel::Support,
        facilitator: None,
        capacity: Capacity::default(),
        schedule: None,
        alumni: false,
        online: false,
        formed_at: day(-30),
    }
    .into()
}

fn joined(member: MemberId) -> GroupEvent {
    MemberJoined {
        member_id: member,
        joined_at: day(-30),
    }
    .into()
}

fn held(session: u128, at: OffsetDateTime, entries: &[(MemberId, AttendanceStatus)]) -> GroupEvent {
    SessionHeld {
        session_id: SessionId::new(Uuid::from_u128(session)),
        held_at: at,
        topic: "t".into(),
        duration_minutes: SessionMinutes::DEFAULT,
        attendance: entries
            .iter()
            .map(|&(member_id, status)| Attendance { member_id, status })
            .collect(),
        recorded_presence_only: false,
    }
    .into()
}

fn corrected(
    session: u128,
    member: MemberId,
    from: AttendanceStatus,
    to: AttendanceStatus,
) -> GroupEvent {
    AttendanceCorrected {
        session_id: SessionId::new(Uuid::from_u128(session)),
        member_id: member,
        from,
        to,
        reason: "r".into(),
        corrected_at: day(0),
    }
    .into()
}

#[test]
fn sessions_attended_counts_present_and_late_in_the_seven_days_before_the_instant() {
    let events = [
        formed(1),
        joined(ann()),
        held(10, day(-8), &[(ann(), Present)]),
        held(11, day(-7), &[(ann(), Present)]),
        held(12, day(-6), &[(ann(), Late)]),
        held(13, day(-5), &[(ann(), Excused)]),
        held(14, day(-4), &[(ann(), Absent)]),
        held(15, day(0), &[(ann(), Present)]),
        held(16, day(1), &[(ann(), Present)]),
    ];
    // day(-7) is exactly seven days before: outside; day(0) is the instant: inside.
    assert_eq!(sessions_attended(ann(), &events, day(0)), 2);
    assert_eq!(sessions_attended(bob(), &events, day(0)), 0);
}

#[test]
fn the_engagement_window_at_the_start_of_the_calendar_does_not_panic() {
    let first = time::PrimitiveDateTime::MIN.assume_utc();
    let events = [formed(1), held(10, first, &[(ann(), Present)])];
    assert_eq!(sessions_attended(ann(), &events, first), 1);
    assert_eq!(
        sessions_attended(ann(), &events, first + Duration::days(7)),
        0
    );
}

#[test]
fn sessions_attended_uses_corrected_attendance() {
    let events = [
        formed(1),
        joined(ann()),
        held(10, day(-1), &[(ann(), Absent)]),
        corrected(10, ann(), Absent, Late),
    ];
    assert_eq!(sessions_attended(ann(), &events, day(0)), 1);
}

#[test]
fn sessions_attended_adds_up_across_groups() {
    let events = [
        formed(1),
        held(10, day(-1), &[(ann(), Present)]),
        formed(2),
        held(20, day(-2), &[(ann(), Present)]),
        held(21, day(-3), &[(ann(), Late)]),
    ];
    assert_eq!(sessions_attended(ann(), &events, day(0)), 3);
}

#[test]
fn a_member_in_treatment_below_the_threshold_is_at_risk() {
    assert!(is_at_risk(Stage::InTreatment, 2, DEFAULT_AT_RISK_THRESHOLD));
    assert!(!is_at_risk(
        Stage::InTreatment,
        3,
        DEFAULT_AT_RISK_THRESHOLD
    ));
}

#[test]
fn the_at_risk_threshold_is_the_clinics_setting() {
    assert!(is_at_risk(Stage::InTreatment, 3, 4));
    assert!(!is_at_risk(Stage::InTreatment, 1, 1));
}

#[test]
fn only_members_in_treatment_are_at_risk() {
    for stage in Stage::ALL
        .iter()
        .copied()
        .filter(|s| *s != Stage::InTreatment)
    {
        assert!(!is_at_risk(stage, 0, DEFAULT_AT_RISK_THRESHOLD), "{stage}");
    }
}

fn ann_admitted_then_discharged() -> Vec<(OffsetDateTime, MemberEvent)> {
    use crate::member::{IntakeCompleted, MemberAdmitted, MemberDischarged, MemberReferred};
    use crate::values::{DischargeReason, LevelOfCare, ReferralSource};
    vec![
        (
            day(-20),
            MemberReferred {
                member_id: ann(),
                name: "Ann".into(),
                email: None,
                phone: None,
                source: ReferralSource::SelfReferral,
                primary_substance: None,
                referred_at: day(-20),
            }
            .into(),
        ),
        (
            day(-19),
            IntakeCompleted {
                assessed_by: "dr-ray".into(),
                recommended_level: LevelOfCare::IntensiveOutpatient,
                completed_at: day(-19),
            }
            .into(),
        ),
        (
            day(-10),
            MemberAdmitted {
                level_of_care: LevelOfCare::IntensiveOutpatient,
                primary_counselor: None,
                admitted_at: day(-10),
            }
            .into(),
        ),
        (
            day(5),
            MemberDischarged {
                reason: DischargeReason::Administrative,
                discharged_at: day(5),
            }
            .into(),
        ),
    ]
}

#[test]
fn at_risk_combines_the_stage_then_with_corrected_attendance_in_the_week_before() {
    let member = ann_admitted_then_discharged();
    let sessions = [
        formed(1),
        joined(ann()),
        held(10, day(-5), &[(ann(), Present)]),
        held(11, day(-3), &[(ann(), Absent)]),
        held(12, day(-1), &[(ann(), Late)]),
    ];
    // Two sessions attended: below the default dose of three while in treatment.
    assert!(at_risk(
        ann(),
        &member,
        &sessions,
        day(0),
        DEFAULT_AT_RISK_THRESHOLD
    ));
    // The absence was recorded by mistake: corrected to present, the week has three.
    let mut corrected_sessions = sessions.to_vec();
    corrected_sessions.push(corrected(11, ann(), Absent, Present));
    assert!(!at_risk(
        ann(),
        &member,
        &corrected_sessions,
        day(0),
        DEFAULT_AT_RISK_THRESHOLD
    ));
    // The clinic's own threshold applies.
    assert!(at_risk(ann(), &member, &corrected_sessions, day(0), 4));
}

#[test]
fn a_member_not_in_treatment_at_the_instant_is_not_at_risk() {
    let member = ann_admitted_then_discharged();
    let none = [formed(1)];
    // Assessed, not yet admitted.
    assert!(!at_risk(ann(), &member, &none, day(-15), 3));
    // In treatment, no session at all.
    assert!(at_risk(ann(), &member, &none, day(-5), 3));
    // Discharged (recorded on day 5).
    assert!(!at_risk(ann(), &member, &none, day(6), 3));
    // Before the referral.
    assert!(!at_risk(ann(), &member, &none, day(-30), 3));
}

#[test]
fn two_absences_in_a_row_flag_a_member_who_stopped_attending() {
    let events = [
        formed(1),
        joined(ann()),
        joined(bob()),
        held(10, day(-9), &[(ann(), Present), (bob(), Absent)]),
        held(11, day(-5), &[(ann(), Absent), (bob(), Present)]),
        held(12, day(-2), &[(ann(), Absent), (bob(), Absent)]),
    ];
    assert_eq!(consecutive_absences(ann(), &events), 2);
    assert_eq!(consecutive_absences(bob(), &events), 1);
    assert_eq!(members_who_stopped_attending(&events), vec![(ann(), 2)]);
}

#[test]
fn an_excused_absence_neither_counts_nor_resets_the_run() {
    let events = [
        formed(1),
        held(10, day(-9), &[(ann(), Absent)]),
        held(11, day(-5), &[(ann(), Excused)]),
        held(12, day(-2), &[(ann(), Absent)]),
    ];
    assert_eq!(consecutive_absences(ann(), &events), 2);
}

#[test]
fn attending_late_resets_the_run_of_absences() {
    let events = [
        formed(1),
        held(10, day(-9), &[(ann(), Absent)]),
        held(11, day(-5), &[(ann(), Absent)]),
        held(12, day(-2), &[(ann(), Late)]),
    ];
    assert_eq!(consecutive_absences(ann(), &events), 0);
}

#[test]
fn absences_are_ordered_by_when_sessions_were_held_not_when_recorded() {
    let events = [
        formed(1),
        held(12, day(-2), &[(ann(), Absent)]),
        held(11, day(-5), &[(ann(), Absent)]),
        held(10, day(-9), &[(ann(), Present)]),
    ];
    assert_eq!(consecutive_absences(ann(), &events), 2);
    let events = [
        formed(1),
        held(12, day(-2), &[(ann(), Present)]),
        held(11, day(-5), &[(ann(), Absent)]),
        held(10, day(-9), &[(ann(), Absent)]),
    ];
    assert_eq!(consecutive_absences(ann(), &events), 0);
}

#[test]
fn a_corrected_absence_no_longer_flags_the_member() {
    let events = [
        formed(1),
        joined(ann()),
        held(10, day(-5), &[(ann(), Absent)]),
        held(11, day(-2), &[(ann(), Absent)]),
        corrected(11, ann(), Absent, Present),
    ];
    assert_eq!(members_who_stopped_attending(&events), vec![]);
}

#[test]
fn a_member_who_left_is_not_flagged_to_the_facilitator() {
    let events = [
        formed(1),
        joined(ann()),
        held(10, day(-5), &[(ann(), Absent)]),
        held(11, day(-2), &[(ann(), Absent)]),
        MemberLeft {
            member_id: ann(),
            reason: "moved".into(),
            left_at: day(-1),
        }
        .into(),
    ];
    assert_eq!(consecutive_absences(ann(), &events), 2);
    assert_eq!(members_who_stopped_attending(&events), vec![]);
}

fn joined_on(member: MemberId, at: OffsetDateTime) -> GroupEvent {
    MemberJoined {
        member_id: member,
        joined_at: at,
    }
    .into()
}

fn left_on(member: MemberId, at: OffsetDateTime) -> GroupEvent {
    MemberLeft {
        member_id: member,
        reason: "moved".into(),
        left_at: at,
    }
    .into()
}

#[test]
fn absences_before_a_member_left_and_rejoined_do_not_flag_them() {
    let events = [
        formed(1),
        joined(ann()),
        joined(bob()),
        held(10, day(-20), &[(ann(), Absent), (bob(), Present)]),
        held(11, day(-13), &[(ann(), Absent), (bob(), Present)]),
        left_on(ann(), day(-12)),
        joined_on(ann(), day(-8)),
        held(12, day(-6), &[(ann(), Absent), (bob(), Present)]),
    ];
    assert_eq!(consecutive_absences(ann(), &events), 1);
    assert_eq!(members_who_stopped_attending(&events), vec![]);
    let state = GroupState::from_events(&events);
    assert_eq!(state.consecutive_absences(ann()), 1);
    assert_eq!(state.members_who_stopped_attending(), vec![]);

    let mut more = events.to_vec();
    more.push(held(13, day(-1), &[(ann(), Absent), (bob(), Present)]));
    assert_eq!(members_who_stopped_attending(&more), vec![(ann(), 2)]);
}

#[test]
fn the_attendance_rate_is_present_or_late_over_all_recorded_attendance() {
    let events = [
        formed(1),
        held(10, day(-5), &[(ann(), Present), (bob(), Absent)]),
        held(11, day(-2), &[(ann(), Late), (bob(), Excused)]),
    ];
    assert!((attendance_rate(&events) - 0.5).abs() < f64::EPSILON);
    assert!(attendance_rate(&[formed(1)]).abs() < f64::EPSILON);
    let state = GroupState::from_events(&events);
    assert!((state.attendance_rate() - 0.5).abs() < f64::EPSILON);
}

fn check_in(n: u128) -> CheckInId {
    CheckInId::new(Uuid::from_u128(n))
}

fn missed(n: u128) -> MemberEvent {
    CheckInMissed {
        check_in_id: check_in(n),
        due_at: day(0),
    }
    .into()
}

fn completed(n: u128) -> MemberEvent {
    CheckInCompleted {
        check_in_id: check_in(n),
        mood: Mood::new(4).unwrap(),
        craving: Craving::new(1).unwrap(),
        used: false,
        completed_at: day(0),
    }
    .into()
}

#[test]
fn two_missed_check_ins_in_a_row_open_outreach() {
    let events = [missed(1), missed(2)];
    assert_eq!(consecutive_missed_check_ins(&events), 2);
    assert!(needs_outreach(consecutive_missed_check_ins(&events)));
}

#[test]
fn a_completed_check_in_ends_the_run_of_missed_ones() {
    let events = [missed(1), missed(2), completed(3), missed(4)];
    assert_eq!(consecutive_missed_check_ins(&events), 1);
    assert!(!needs_outreach(consecutive_missed_check_ins(&events)));
}
