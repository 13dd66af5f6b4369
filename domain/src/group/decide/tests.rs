#![allow(clippy::unwrap_used)]

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::decider::ErrorKind;
use crate::group::*;
use crate::ids::{GroupId, MemberId, SessionId};
use crate::testing::{self, Given};
use crate::values::*;

// ---- fixtures -------------------------------------------------------------------

fn given(events: impl IntoIterator<Item = GroupEvent>) -> Given<GroupDecider> {
    testing::given::<GroupDecider>(events)
}

/// Day `n` of the story, at 18:00 UTC (day 0 is 2026-03-02, a Monday).
fn day(n: i64) -> OffsetDateTime {
    datetime!(2026-03-02 18:00 UTC) + Duration::days(n)
}

fn group() -> GroupId {
    GroupId::new(Uuid::from_u128(0x6A0))
}

fn member(n: u128) -> MemberId {
    MemberId::new(Uuid::from_u128(0x3E3_0000 + n))
}

fn ann() -> MemberId {
    member(1)
}

fn bob() -> MemberId {
    member(2)
}

fn cy() -> MemberId {
    member(3)
}

fn session(n: u128) -> SessionId {
    SessionId::new(Uuid::from_u128(0x5E5_0000 + n))
}

fn text(s: &str) -> Text {
    Text::parse("text", s).unwrap()
}

fn capacity(n: i64) -> Capacity {
    Capacity::new(n).unwrap()
}

fn group_formed(capacity: Capacity) -> GroupEvent {
    formed(capacity, false)
}

fn formed(capacity: Capacity, alumni: bool) -> GroupEvent {
    GroupFormed {
        group_id: group(),
        name: "Tuesday relapse prevention".into(),
        model: GroupModel::SkillsDevelopment,
        facilitator: Some("facilitator-sam".into()),
        capacity,
        schedule: Some("Tuesdays 18:00".into()),
        alumni,
        online: false,
        formed_at: day(0),
    }
    .into()
}

fn member_joined(member: MemberId) -> GroupEvent {
    MemberJoined {
        member_id: member,
        joined_at: day(0),
    }
    .into()
}

fn join(member: MemberId, stage: Stage) -> JoinGroup {
    JoinGroup {
        member,
        member_stage: Some(stage),
        at: day(0),
    }
}

fn attendance(entries: &[(MemberId, AttendanceStatus)]) -> Vec<Attendance> {
    entries
        .iter()
        .map(|&(member_id, status)| Attendance { member_id, status })
        .collect()
}

fn record(n: u128, entries: &[(MemberId, AttendanceStatus)]) -> RecordSession {
    RecordSession {
        session: session(n),
        planned: false,
        held_at: day(1),
        topic: text("coping with cravings"),
        duration: SessionMinutes::DEFAULT,
        attendance: attendance(entries),
    }
}

fn held(n: u128, entries: &[(MemberId, AttendanceStatus)]) -> GroupEvent {
    SessionHeld {
        session_id: session(n),
        held_at: day(1),
        topic: "coping with cravings".into(),
        duration_minutes: SessionMinutes::DEFAULT,
        attendance: attendance(entries),
        recorded_presence_only: false,
    }
    .into()
}

fn session_scheduled(n: u128) -> GroupEvent {
    SessionScheduled {
        session_id: session(n),
        starts_at: day(1),
        topic: "coping with cravings".into(),
    }
    .into()
}

fn closed() -> GroupEvent {
    GroupClosed {
        reason: "programme ended".into(),
        closed_at: day(30),
    }
    .into()
}

fn ann_and_bob() -> Vec<GroupEvent> {
    vec![
        group_formed(Capacity::default()),
        member_joined(ann()),
        member_joined(bob()),
    ]
}

fn with_events(
    mut events: Vec<GroupEvent>,
    more: impl IntoIterator<Item = GroupEvent>,
) -> Vec<GroupEvent> {
    events.extend(more);
    events
}

use AttendanceStatus::{Absent, Excused, Late, Present};

// ---- forming ------------------------------------------------------------------------

#[test]
fn forming_a_group_starts_its_stream() {
    let state = given([])
        .when(FormGroup {
            group: group(),
            name: text("Tuesday relapse prevention"),
            model: GroupModel::SkillsDevelopment,
            facilitator: Some(text("facilitator-sam")),
            capacity: Capacity::default(),
            schedule: Some(text("Tuesdays 18:00")),
            alumni: false,
            online: false,
            at: day(0),
        })
        .then([group_formed(Capacity::default())]);
    let profile = state.profile().unwrap();
    assert_eq!(profile.capacity.get(), 12);
    assert_eq!(profile.facilitator.as_deref(), Some("facilitator-sam"));
}

#[test]
fn a_group_is_formed_once() {
    given([group_formed(Capacity::default())])
        .when(FormGroup {
            group: group(),
            name: text("again"),
            model: GroupModel::Support,
            facilitator: None,
            capacity: Capacity::default(),
            schedule: None,
            alumni: false,
            online: true,
            at: day(1),
        })
        .then_err(GroupError::AlreadyFormed { group: group() });
}

#[test]
fn a_command_for_a_group_never_formed_is_not_found() {
    let error = given([]).when(join(ann(), Stage::InTreatment)).then_error();
    assert_eq!(error, GroupError::UnknownGroup);
    assert_eq!(error.kind(), ErrorKind::NotFound);
}

// ---- joining and leaving ------------------------------------------------------------

#[test]
fn a_member_in_treatment_joins_a_group() {
    let state = given([group_formed(Capacity::default())])
        .when(join(ann(), Stage::InTreatment))
        .then([member_joined(ann())]);
    assert_eq!(state.roster(), &[ann()]);
}

#[test]
fn joining_a_full_group_is_refused() {
    given([group_formed(capacity(1)), member_joined(ann())])
        .when(join(bob(), Stage::InTreatment))
        .then_err(GroupError::GroupFull { capacity: 1 });
}

#[test]
fn joining_a_group_twice_is_refused() {
    given([group_formed(Capacity::default()), member_joined(ann())])
        .when(join(ann(), Stage::InTreatment))
        .then_err(GroupError::AlreadyOnRoster { member: ann() });
}

#[test]
fn a_member_not_in_treatment_cannot_join_a_group() {
    for stage in [
        Stage::Referred,
        Stage::Intake,
        Stage::Discharged,
        Stage::Aftercare,
        Stage::Alumni,
    ] {
        given([group_formed(Capacity::default())])
            .when(join(ann(), stage))
            .then_err(GroupError::MemberNotAdmitted { member: ann() });
    }
}

#[test]
fn an_unknown_or_erased_member_cannot_join_a_group() {
    given([group_formed(Capacity::default())])
        .when(JoinGroup {
            member: ann(),
            member_stage: None,
            at: day(0),
        })
        .then_err(GroupError::MemberNotAdmitted { member: ann() });
}

#[test]
fn alumni_and_members_in_aftercare_join_a_group_marked_for_alumni() {
    for stage in [Stage::Alumni, Stage::Aftercare, Stage::InTreatment] {
        given([formed(Capacity::default(), true)])
            .when(join(ann(), stage))
            .then([member_joined(ann())]);
    }
}

#[test]
fn a_discharged_member_cannot_join_a_group_marked_for_alumni() {
    given([formed(Capacity::default(), true)])
        .when(join(ann(), Stage::Discharged))
        .then_err(GroupError::NotEligibleForAlumniGroup { member: ann() });
}

#[test]
fn a_member_leaves_with_a_reason_and_may_rejoin() {
    let left = MemberLeft {
        member_id: ann(),
        reason: "moved to evening group".into(),
        left_at: day(3),
    };
    let state = given(ann_and_bob())
        .when(LeaveGroup {
            member: ann(),
            reason: text("moved to evening group"),
            at: day(3),
        })
        .then([left.clone()]);
    assert_eq!(state.roster(), &[bob()]);
    let mut history = ann_and_bob();
    history.push(left.into());
    given(history)
        .when(JoinGroup {
            at: day(4),
            ..join(ann(), Stage::InTreatment)
        })
        .then([joined_on(ann(), 4)]);
}

fn joined_on(member: MemberId, n: i64) -> GroupEvent {
    MemberJoined {
        member_id: member,
        joined_at: day(n),
    }
    .into()
}

fn left_on(member: MemberId, n: i64) -> GroupEvent {
    MemberLeft {
        member_id: member,
        reason: "moved".into(),
        left_at: day(n),
    }
    .into()
}

fn leave_on(member: MemberId, n: i64) -> LeaveGroup {
    LeaveGroup {
        member,
        reason: text("moved"),
        at: day(n),
    }
}

#[test]
fn a_rejoin_dated_before_the_last_leave_is_refused() {
    given(with_events(ann_and_bob(), [left_on(ann(), 3)]))
        .when(JoinGroup {
            at: day(2),
            ..join(ann(), Stage::InTreatment)
        })
        .then_err(GroupError::RosterChangeOutOfOrder { member: ann() });
}

#[test]
fn a_leave_dated_before_the_join_is_refused() {
    given([group_formed(Capacity::default()), joined_on(ann(), 3)])
        .when(leave_on(ann(), 2))
        .then_err(GroupError::RosterChangeOutOfOrder { member: ann() });
}

#[test]
fn a_join_dated_before_a_recorded_session_is_refused() {
    let history = with_events(
        ann_and_bob(),
        [held(1, &[(ann(), Present), (bob(), Present)])],
    );
    given(history.clone())
        .when(JoinGroup {
            at: day(1),
            ..join(cy(), Stage::InTreatment)
        })
        .then_err(GroupError::RosterChangeBeforeRecordedSession {
            session: session(1),
        });
    given(history)
        .when(JoinGroup {
            at: day(2),
            ..join(cy(), Stage::InTreatment)
        })
        .then([joined_on(cy(), 2)]);
}

#[test]
fn a_leave_dated_before_a_recorded_session_that_lists_the_member_is_refused() {
    given(with_events(
        ann_and_bob(),
        [held(1, &[(ann(), Present), (bob(), Present)])],
    ))
    .when(leave_on(bob(), 1))
    .then_err(GroupError::RosterChangeBeforeRecordedSession {
        session: session(1),
    });
}

#[test]
fn a_backdated_join_cannot_overfill_the_roster_at_an_earlier_time() {
    // Ann was on the roster from day 5 to day 8: a seat for Bob from day 3 would have
    // made two members on a roster of one.
    let history = [
        group_formed(capacity(1)),
        joined_on(ann(), 5),
        left_on(ann(), 8),
    ];
    given(history.clone())
        .when(JoinGroup {
            at: day(3),
            ..join(bob(), Stage::InTreatment)
        })
        .then_err(GroupError::GroupFull { capacity: 1 });
    given(history)
        .when(JoinGroup {
            at: day(8),
            ..join(bob(), Stage::InTreatment)
        })
        .then([joined_on(bob(), 8)]);
}

#[test]
fn a_session_recorded_late_lists_the_roster_of_its_day_not_someone_who_joined_since() {
    // Ann and Bob on the roster from day 0; Cy joined on day 3; Tuesday's session
    // (day 1) is recorded on day 4.
    let history = with_events(ann_and_bob(), [joined_on(cy(), 3)]);
    given(history.clone())
        .when(record(
            1,
            &[(ann(), Present), (bob(), Absent), (cy(), Present)],
        ))
        .then_err(GroupError::RosterMismatch {
            missing: vec![],
            unexpected: vec![cy()],
        });
    let state = given(history)
        .when(record(1, &[(ann(), Present), (bob(), Absent)]))
        .then([held(1, &[(ann(), Present), (bob(), Absent)])]);
    assert_eq!(state.roster(), &[ann(), bob(), cy()]);
    assert_eq!(state.roster_at(day(1)), vec![ann(), bob()]);
}

#[test]
fn a_session_recorded_late_still_lists_someone_who_has_left_since() {
    // Bob left on day 3; the day-1 session, recorded afterwards, must still list him.
    let history = with_events(ann_and_bob(), [left_on(bob(), 3)]);
    given(history.clone())
        .when(record(1, &[(ann(), Present)]))
        .then_err(GroupError::RosterMismatch {
            missing: vec![bob()],
            unexpected: vec![],
        });
    given(history)
        .when(record(1, &[(ann(), Present), (bob(), Excused)]))
        .then([held(1, &[(ann(), Present), (bob(), Excused)])]);
}

#[test]
fn a_member_not_on_the_roster_cannot_leave() {
    given(ann_and_bob())
        .when(LeaveGroup {
            member: cy(),
            reason: text("x"),
            at: day(3),
        })
        .then_err(GroupError::NotOnRoster { member: cy() });
}

// ---- sessions -----------------------------------------------------------------------

#[test]
fn a_session_is_scheduled_once() {
    let schedule = ScheduleSession {
        session: session(1),
        starts_at: day(1),
        topic: text("coping with cravings"),
        at: day(0),
    };
    given(ann_and_bob())
        .when(schedule.clone())
        .then([session_scheduled(1)]);
    let mut history = ann_and_bob();
    history.push(session_scheduled(1));
    given(history)
        .when(schedule)
        .then_err(GroupError::DuplicateSession {
            session: session(1),
        });
}

#[test]
fn a_session_is_recorded_with_attendance_for_exactly_the_roster() {
    let state = given(ann_and_bob())
        .when(record(1, &[(ann(), Present), (bob(), Late)]))
        .then([held(1, &[(ann(), Present), (bob(), Late)])]);
    assert_eq!(
        state.session(session(1)).unwrap().status,
        SessionStatus::Held
    );
}

#[test]
fn a_scheduled_session_is_recorded_as_held() {
    let mut history = ann_and_bob();
    history.push(session_scheduled(1));
    let state = given(history)
        .when(record(1, &[(ann(), Absent), (bob(), Excused)]))
        .then([held(1, &[(ann(), Absent), (bob(), Excused)])]);
    let s = state.session(session(1)).unwrap();
    assert_eq!((s.status, s.starts_at), (SessionStatus::Held, Some(day(1))));
}

#[test]
fn attendance_missing_a_roster_member_is_refused() {
    given(ann_and_bob())
        .when(record(1, &[(ann(), Present)]))
        .then_err(GroupError::RosterMismatch {
            missing: vec![bob()],
            unexpected: vec![],
        });
}

#[test]
fn attendance_naming_someone_off_the_roster_is_refused() {
    given(ann_and_bob())
        .when(record(
            1,
            &[(ann(), Present), (bob(), Present), (cy(), Present)],
        ))
        .then_err(GroupError::RosterMismatch {
            missing: vec![],
            unexpected: vec![cy()],
        });
}

#[test]
fn attendance_listing_a_member_twice_is_invalid_input() {
    let error = given(ann_and_bob())
        .when(record(
            1,
            &[(ann(), Present), (bob(), Present), (ann(), Late)],
        ))
        .then_error();
    assert_eq!(error, GroupError::DuplicateAttendance { member: ann() });
    assert!(error.is_invalid_input());
}

#[test]
fn a_session_is_recorded_once() {
    let mut history = ann_and_bob();
    history.push(held(1, &[(ann(), Present), (bob(), Present)]));
    given(history)
        .when(record(1, &[(ann(), Present), (bob(), Present)]))
        .then_err(GroupError::SessionAlreadyHeld {
            session: session(1),
        });
}

#[test]
fn a_cancelled_session_cannot_be_recorded() {
    let cancelled = SessionCancelled {
        session_id: session(1),
        reason: "facilitator ill".into(),
        cancelled_at: day(1),
    };
    let mut history = ann_and_bob();
    history.extend([session_scheduled(1), cancelled.into()]);
    given(history)
        .when(record(1, &[(ann(), Present), (bob(), Present)]))
        .then_err(GroupError::SessionCancelled {
            session: session(1),
        });
}

#[test]
fn a_session_of_an_empty_group_has_empty_attendance() {
    given([group_formed(Capacity::default())])
        .when(record(1, &[]))
        .then([held(1, &[])]);
}

#[test]
fn a_scheduled_session_is_cancelled_with_a_reason() {
    let mut history = ann_and_bob();
    history.push(session_scheduled(1));
    let state = given(history)
        .when(CancelSession {
            session: session(1),
            reason: text("facilitator ill"),
            at: day(1),
        })
        .then([SessionCancelled {
            session_id: session(1),
            reason: "facilitator ill".into(),
            cancelled_at: day(1),
        }]);
    assert_eq!(
        state.session(session(1)).unwrap().status,
        SessionStatus::Cancelled
    );
}

#[test]
fn a_held_or_unknown_session_cannot_be_cancelled() {
    let mut history = ann_and_bob();
    history.push(held(1, &[(ann(), Present), (bob(), Present)]));
    let cancel = |n| CancelSession {
        session: session(n),
        reason: text("x"),
        at: day(2),
    };
    given(history.clone())
        .when(cancel(1))
        .then_err(GroupError::SessionAlreadyHeld {
            session: session(1),
        });
    given(history)
        .when(cancel(2))
        .then_err(GroupError::UnknownSession {
            session: session(2),
        });
}

// ---- corrections --------------------------------------------------------------------

fn correct(member: MemberId, to: AttendanceStatus) -> CorrectAttendance {
    CorrectAttendance {
        session: session(1),
        member,
        to,
        reason: text("was in the back row"),
        at: day(2),
    }
}

fn with_session() -> Vec<GroupEvent> {
    let mut history = ann_and_bob();
    history.push(held(1, &[(ann(), Absent), (bob(), Present)]));
    history
}

/// What `correct(ann(), Late)` records on [`with_session`].
fn ann_absent_corrected_to_late() -> AttendanceCorrected {
    AttendanceCorrected {
        session_id: session(1),
        member_id: ann(),
        from: Absent,
        to: Late,
        reason: "was in the back row".into(),
        corrected_at: day(2),
    }
}

#[test]
fn a_correction_records_from_to_and_reason_and_the_state_uses_the_corrected_value() {
    let state = given(with_session())
        .when(correct(ann(), Late))
        .then([ann_absent_corrected_to_late()]);
    assert_eq!(
        state.session(session(1)).unwrap().attendance[0],
        Attendance {
            member_id: ann(),
            status: Late
        }
    );
}

#[test]
fn a_correction_to_the_recorded_status_is_refused() {
    given(with_session())
        .when(correct(bob(), Present))
        .then_err(GroupError::NothingToCorrect {
            session: session(1),
            member: bob(),
            status: Present,
        });
}

#[test]
fn a_correction_for_someone_not_in_the_attendance_is_refused() {
    given(with_session())
        .when(correct(cy(), Present))
        .then_err(GroupError::NotInAttendance {
            session: session(1),
            member: cy(),
        });
}

#[test]
fn a_correction_for_a_session_not_held_is_refused() {
    let mut history = ann_and_bob();
    history.push(session_scheduled(1));
    given(history)
        .when(correct(ann(), Present))
        .then_err(GroupError::SessionNotHeld {
            session: session(1),
        });
}

// ---- formation ----------------------------------------------------------------------

#[test]
fn nothing_is_dated_before_the_group_was_formed() {
    let refused = |what| GroupError::BeforeFormation {
        what,
        formed_at: day(0),
    };
    given([group_formed(Capacity::default())])
        .when(JoinGroup {
            at: day(-1),
            ..join(ann(), Stage::InTreatment)
        })
        .then_err(refused("a join"));
    given(ann_and_bob())
        .when(RecordSession {
            held_at: day(-3),
            ..record(1, &[(ann(), Present), (bob(), Present)])
        })
        .then_err(refused("a session"));
    // At the formation itself, both may be.
    given([group_formed(Capacity::default())])
        .when(join(ann(), Stage::InTreatment))
        .then_ok();
}

// ---- closing ------------------------------------------------------------------------

#[test]
fn a_closed_group_refuses_everything() {
    let mut history = ann_and_bob();
    history.push(closed());
    let refused = GroupError::GroupClosed { group: group() };
    given(history.clone())
        .when(join(cy(), Stage::InTreatment))
        .then_err(refused.clone());
    given(history.clone())
        .when(record(1, &[(ann(), Present), (bob(), Present)]))
        .then_err(refused.clone());
    given(history)
        .when(CloseGroup {
            reason: text("again"),
            at: day(31),
        })
        .then_err(refused);
}

#[test]
fn a_closed_groups_attendance_may_still_be_corrected() {
    let mut history = with_session();
    history.push(closed());
    given(history)
        .when(correct(ann(), Late))
        .then([ann_absent_corrected_to_late()]);
}

#[test]
fn closing_a_group_records_why() {
    let state = given(ann_and_bob())
        .when(CloseGroup {
            reason: text("programme ended"),
            at: day(30),
        })
        .then([closed()]);
    assert!(state.closed());
}

// ---- errors -------------------------------------------------------------------------

#[test]
fn group_errors_read_as_a_clinician_would_say_them() {
    assert_eq!(
        GroupError::GroupFull { capacity: 1 }.to_string(),
        "the group is full (capacity 1)"
    );
    let mismatch = GroupError::RosterMismatch {
        missing: vec![bob()],
        unexpected: vec![],
    };
    assert_eq!(
        mismatch.to_string(),
        format!(
            "attendance must list exactly the roster: missing {}, not on the roster none",
            bob()
        )
    );
    assert_eq!(mismatch.kind(), ErrorKind::Conflict);
}

#[test]
fn a_member_id_is_never_put_beside_their_stage_or_attendance_in_a_message() {
    for error in [
        GroupError::MemberNotAdmitted { member: ann() },
        GroupError::NotEligibleForAlumniGroup { member: ann() },
    ] {
        let message = error.to_string();
        assert!(!message.contains(&ann().to_string()), "{message}");
    }
    assert_eq!(
        GroupError::MemberNotAdmitted { member: ann() }.to_string(),
        "only members in treatment may join this group"
    );
    let message = GroupError::NothingToCorrect {
        session: session(1),
        member: ann(),
        status: Absent,
    }
    .to_string();
    assert!(!message.contains("absent"), "{message}");
}

// ---- recording a planned session --------------------------------------------------------

#[test]
fn a_planned_session_of_this_group_is_recorded_under_its_id() {
    let entries = [(ann(), Present), (bob(), Absent)];
    given(with_events(ann_and_bob(), [session_scheduled(1)]))
        .when(RecordSession {
            planned: true,
            ..record(1, &entries)
        })
        .then([held(1, &entries)]);
}

#[test]
fn a_planned_session_this_group_never_scheduled_is_not_found() {
    // The id of another group's session, say: it is never taken over.
    let entries = [(ann(), Present), (bob(), Absent)];
    given(ann_and_bob())
        .when(RecordSession {
            planned: true,
            ..record(1, &entries)
        })
        .then_err(GroupError::UnknownSession {
            session: session(1),
        });
}
