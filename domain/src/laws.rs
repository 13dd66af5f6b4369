//! Laws over any sequence of commands, valid or not (proptest).
//!
//! Commands are generated as abstract actions and made concrete against the current
//! state (so that most of them are valid and the interesting paths are reached), then
//! decided; refused commands change nothing. After every step:
//! - replaying the decided events from scratch gives the same state as evolving it;
//! - the state's version equals the number of events folded (versions are contiguous);
//! - every decided event reads back from its stored form;
//! - groups: the roster never exceeds capacity; the state's engagement numbers agree
//!   with the derived views in [`crate::engagement`];
//! - members: the one stage agrees with an independent reading of the events, moves only
//!   along DOMAIN.md's transitions, and missed check-ins agree with the view.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::engagement;
use crate::group::*;
use crate::ids::*;
use crate::member::*;
use crate::timeline;
use crate::values::*;

fn start() -> OffsetDateTime {
    time::macros::datetime!(2026-03-02 09:00 UTC)
}

fn text(s: &str) -> Text {
    Text::parse("text", s).unwrap()
}

fn pick<T: Copy>(all: &[T], n: usize) -> T {
    all[n % all.len()]
}

// ---- groups ---------------------------------------------------------------------------

const MEMBERS: usize = 6;
const SESSIONS: u128 = 6;

fn member(n: usize) -> MemberId {
    MemberId::new(Uuid::from_u128(0x1000 + n as u128))
}

fn session(n: u128) -> SessionId {
    SessionId::new(Uuid::from_u128(0x2000 + n))
}

#[derive(Debug, Clone)]
enum Shape {
    Exact,
    DropOne,
    AddStranger,
    Duplicate,
}

#[derive(Debug, Clone)]
enum GroupAction {
    Form {
        capacity: i64,
        alumni: bool,
    },
    Join {
        member: usize,
        stage: Option<usize>,
    },
    Leave {
        member: usize,
    },
    Schedule {
        session: u128,
        hours: i64,
    },
    Record {
        session: u128,
        hours: i64,
        statuses: Vec<usize>,
        shape: Shape,
    },
    Cancel {
        session: u128,
    },
    Correct {
        session: u128,
        member: usize,
        to: usize,
    },
    Close,
}

fn group_action() -> impl Strategy<Value = GroupAction> {
    let shape = prop_oneof![
        18 => Just(Shape::Exact),
        3 => Just(Shape::DropOne),
        3 => Just(Shape::AddStranger),
        3 => Just(Shape::Duplicate),
    ];
    prop_oneof![
        6 => (1i64..=4, any::<bool>()).prop_map(|(capacity, alumni)| GroupAction::Form { capacity, alumni }),
        24 => (0..MEMBERS, proptest::option::weighted(0.9, 0usize..6))
            .prop_map(|(member, stage)| GroupAction::Join { member, stage }),
        6 => (0..MEMBERS).prop_map(|member| GroupAction::Leave { member }),
        6 => (0..SESSIONS, 0i64..400).prop_map(|(session, hours)| GroupAction::Schedule { session, hours }),
        24 => (0..SESSIONS, 0i64..400, proptest::collection::vec(0usize..4, MEMBERS), shape)
            .prop_map(|(session, hours, statuses, shape)| GroupAction::Record { session, hours, statuses, shape }),
        3 => (0..SESSIONS).prop_map(|session| GroupAction::Cancel { session }),
        12 => (0..SESSIONS, 0..MEMBERS, 0usize..4)
            .prop_map(|(session, member, to)| GroupAction::Correct { session, member, to }),
        1 => Just(GroupAction::Close),
    ]
}

fn group_command(action: GroupAction, state: &GroupState) -> GroupCommand {
    let at = start();
    match action {
        GroupAction::Form { capacity, alumni } => FormGroup {
            group: GroupId::new(Uuid::from_u128(0x3000)),
            name: text("group"),
            model: GroupModel::Support,
            facilitator: None,
            capacity: Capacity::new(capacity).unwrap(),
            schedule: None,
            alumni,
            online: false,
            at,
        }
        .into(),
        GroupAction::Join { member: m, stage } => JoinGroup {
            member: member(m),
            member_stage: stage.map(|s| pick(Stage::ALL, s)),
            at,
        }
        .into(),
        GroupAction::Leave { member: m } => LeaveGroup {
            member: member(m),
            reason: text("left"),
            at,
        }
        .into(),
        GroupAction::Schedule { session: s, hours } => ScheduleSession {
            session: session(s),
            starts_at: at + Duration::hours(hours),
            topic: text("topic"),
            at,
        }
        .into(),
        GroupAction::Record {
            session: s,
            hours,
            statuses,
            shape,
        } => {
            let mut attendance: Vec<Attendance> = state
                .roster()
                .iter()
                .zip(&statuses)
                .map(|(&member_id, &status)| Attendance {
                    member_id,
                    status: pick(AttendanceStatus::ALL, status),
                })
                .collect();
            match shape {
                Shape::Exact => {}
                Shape::DropOne => {
                    attendance.pop();
                }
                Shape::AddStranger => attendance.push(Attendance {
                    member_id: member(MEMBERS + 1),
                    status: AttendanceStatus::Present,
                }),
                Shape::Duplicate => {
                    if let Some(first) = attendance.first().copied() {
                        attendance.push(first);
                    }
                }
            }
            RecordSession {
                session: session(s),
                held_at: at + Duration::hours(hours),
                topic: text("topic"),
                duration: SessionMinutes::DEFAULT,
                attendance,
            }
            .into()
        }
        GroupAction::Cancel { session: s } => CancelSession {
            session: session(s),
            reason: text("cancelled"),
            at,
        }
        .into(),
        GroupAction::Correct {
            session: s,
            member: m,
            to,
        } => CorrectAttendance {
            // Mostly a member of a held session, sometimes anyone anywhere.
            session: held_session(state, s).map_or(session(s), |held| held.id),
            member: held_session(state, s)
                .filter(|held| !held.attendance.is_empty() && m > 0)
                .map_or(member(m), |held| {
                    held.attendance[m % held.attendance.len()].member_id
                }),
            to: pick(AttendanceStatus::ALL, to),
            reason: text("correction"),
            at,
        }
        .into(),
        GroupAction::Close => CloseGroup {
            reason: text("closed"),
            at,
        }
        .into(),
    }
}

fn held_session(state: &GroupState, n: u128) -> Option<&Session> {
    let held: Vec<&Session> = state
        .sessions()
        .iter()
        .filter(|s| s.status == SessionStatus::Held)
        .collect();
    (!held.is_empty()).then(|| held[n as usize % held.len()])
}

fn run_group(actions: Vec<GroupAction>) -> Result<(GroupState, Vec<GroupEvent>), TestCaseError> {
    let mut state = GroupState::default();
    let mut events: Vec<GroupEvent> = vec![];
    for action in actions {
        let command = group_command(action, &state);
        let decided = crate::group::decide(&state, command.clone());
        prop_assert_eq!(
            &decided,
            &crate::group::decide(&state, command),
            "decide is deterministic"
        );
        let Ok(new) = decided else { continue };
        for event in &new {
            let stored = GroupEvent::from_stored(
                event.event_type(),
                event.schema_version(),
                event.to_data(),
            );
            prop_assert_eq!(stored.as_ref(), Ok(event));
        }
        state = new.iter().fold(state, |s, e| s.evolve(e));
        events.extend(new);
        if let Some(profile) = state.profile() {
            prop_assert!(state.roster().len() <= usize::from(profile.capacity.get()));
        }
        prop_assert_eq!(state.version(), events.len() as u64);
        prop_assert_eq!(&GroupState::from_events(&events), &state);
    }
    Ok((state, events))
}

// ---- members --------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum MemberAction {
    Refer,
    Intake {
        level: usize,
    },
    Admit {
        level: usize,
    },
    ChangeLevel {
        level: usize,
    },
    GiveConsent {
        n: u128,
        scope: usize,
        expires_in_hours: Option<i64>,
    },
    RevokeConsent {
        n: u128,
    },
    RevokeScope {
        scope: usize,
    },
    SetGoal {
        n: u128,
    },
    AchieveGoal {
        n: u128,
    },
    ScheduleCheckIn {
        n: u128,
        due_in_hours: i64,
    },
    CompleteCheckIn {
        n: u128,
    },
    MarkMissed {
        n: u128,
    },
    Discharge {
        reason: usize,
        offsets: Vec<u16>,
    },
    FollowUpDue {
        pick: usize,
    },
    RecordFollowUp {
        pick: usize,
        outcome: usize,
    },
    EnrollAlumni,
    Readmit {
        level: usize,
    },
    Disclose {
        n: u128,
        consent: u128,
        named: bool,
    },
    Erase {
        retention_days: u32,
    },
}

fn member_action() -> impl Strategy<Value = (i64, MemberAction)> {
    let action = prop_oneof![
        9 => Just(MemberAction::Refer),
        12 => (0usize..5).prop_map(|level| MemberAction::Intake { level }),
        12 => (0usize..5).prop_map(|level| MemberAction::Admit { level }),
        6 => (0usize..5).prop_map(|level| MemberAction::ChangeLevel { level }),
        6 => (0u128..3, 0usize..2, proptest::option::of(1i64..2000))
            .prop_map(|(n, scope, expires_in_hours)| MemberAction::GiveConsent { n, scope, expires_in_hours }),
        3 => (0u128..3).prop_map(|n| MemberAction::RevokeConsent { n }),
        3 => (0usize..2).prop_map(|scope| MemberAction::RevokeScope { scope }),
        3 => (0u128..3).prop_map(|n| MemberAction::SetGoal { n }),
        3 => (0u128..3).prop_map(|n| MemberAction::AchieveGoal { n }),
        12 => (0u128..6, -24i64..200).prop_map(|(n, due_in_hours)| MemberAction::ScheduleCheckIn { n, due_in_hours }),
        9 => (0u128..6).prop_map(|n| MemberAction::CompleteCheckIn { n }),
        9 => (0u128..6).prop_map(|n| MemberAction::MarkMissed { n }),
        9 => (0usize..4, proptest::collection::vec(0u16..400, 0..4))
            .prop_map(|(reason, offsets)| MemberAction::Discharge { reason, offsets }),
        6 => (0usize..8).prop_map(|pick| MemberAction::FollowUpDue { pick }),
        6 => (0usize..8, 0usize..5).prop_map(|(pick, outcome)| MemberAction::RecordFollowUp { pick, outcome }),
        6 => Just(MemberAction::EnrollAlumni),
        6 => (0usize..5).prop_map(|level| MemberAction::Readmit { level }),
        9 => (0u128..3, 0u128..3, any::<bool>())
            .prop_map(|(n, consent, named)| MemberAction::Disclose { n, consent, named }),
        1 => (0u32..40).prop_map(|retention_days| MemberAction::Erase { retention_days }),
    ];
    (0i64..96, action)
}

fn the_member() -> MemberId {
    MemberId::new(Uuid::from_u128(0xA11E))
}

fn member_command(action: MemberAction, state: &MemberState, now: OffsetDateTime) -> MemberCommand {
    let level = |n| pick(LevelOfCare::ALL, n);
    let consent = |n: u128| ConsentId::new(Uuid::from_u128(0x4000 + n));
    let check_in = |n: u128| CheckInId::new(Uuid::from_u128(0x5000 + n));
    let follow_up = |pick: usize| {
        let all = state.follow_ups();
        if all.is_empty() {
            FollowUpId::new(Uuid::from_u128(0x6000))
        } else {
            all[pick % all.len()].id
        }
    };
    match action {
        MemberAction::Refer => ReferMember {
            member: the_member(),
            name: PersonName::parse("Ann").unwrap(),
            email: None,
            phone: None,
            source: ReferralSource::Family,
            primary_substance: None,
            at: now,
        }
        .into(),
        MemberAction::Intake { level: l } => CompleteIntake {
            assessed_by: text("dr"),
            recommended_level: level(l),
            at: now,
        }
        .into(),
        MemberAction::Admit { level: l } => AdmitMember {
            level_of_care: level(l),
            primary_counselor: None,
            at: now,
        }
        .into(),
        MemberAction::ChangeLevel { level: l } => ChangeLevelOfCare {
            to: level(l),
            reason: text("step"),
            at: now,
        }
        .into(),
        MemberAction::GiveConsent {
            n,
            scope,
            expires_in_hours,
        } => GiveConsent {
            expires_at: expires_in_hours.map(|h| now + Duration::hours(h)),
            ..GiveConsent::short_form(consent(n), pick(ConsentScope::ALL, scope), now)
        }
        .into(),
        MemberAction::RevokeConsent { n } => RevokeConsent {
            consent: consent(n),
            how_received: text("orally"),
            at: now,
        }
        .into(),
        MemberAction::RevokeScope { scope } => RevokeConsentsOfScope {
            scope: pick(ConsentScope::ALL, scope),
            how_received: text("orally"),
            at: now,
        }
        .into(),
        MemberAction::SetGoal { n } => SetGoal {
            goal: GoalId::new(Uuid::from_u128(0x7000 + n)),
            text: text("goal"),
            at: now,
        }
        .into(),
        MemberAction::AchieveGoal { n } => AchieveGoal {
            goal: GoalId::new(Uuid::from_u128(0x7000 + n)),
            at: now,
        }
        .into(),
        MemberAction::ScheduleCheckIn { n, due_in_hours } => ScheduleCheckIn {
            check_in: check_in(n),
            due_at: now + Duration::hours(due_in_hours),
            channel: CheckInChannel::App,
            at: now,
        }
        .into(),
        MemberAction::CompleteCheckIn { n } => CompleteCheckIn {
            check_in: check_in(n),
            mood: Mood::new(3).unwrap(),
            craving: Craving::new(3).unwrap(),
            used: false,
            at: now,
        }
        .into(),
        MemberAction::MarkMissed { n } => MarkCheckInMissed {
            check_in: check_in(n),
            now,
        }
        .into(),
        MemberAction::Discharge { reason, offsets } => {
            let mut command = DischargeMember::new(pick(DischargeReason::ALL, reason), now);
            if !offsets.is_empty() {
                command.follow_up_offsets_days = offsets;
            }
            command.into()
        }
        MemberAction::FollowUpDue { pick } => MarkFollowUpDue {
            follow_up: follow_up(pick),
            now: now + Duration::days(400),
        }
        .into(),
        MemberAction::RecordFollowUp { pick, outcome } => RecordFollowUp {
            follow_up: follow_up(pick),
            outcome: crate::values::FollowUpOutcome::ALL[outcome % 5],
            at: now,
        }
        .into(),
        MemberAction::EnrollAlumni => EnrollAlumni { at: now }.into(),
        MemberAction::Readmit { level: l } => ReadmitMember {
            level_of_care: level(l),
            primary_counselor: None,
            at: now,
        }
        .into(),
        MemberAction::Disclose {
            n,
            consent: c,
            named,
        } => RecordDisclosure {
            disclosure: DisclosureId::new(Uuid::from_u128(0x8000 + n)),
            consent: consent(c),
            recipient: text(if named { "The Clinic" } else { "someone else" }),
            recipient_class: None,
            purpose: text("p"),
            description: text("d"),
            channel: text("fax"),
            disclosed_by: text("kim"),
            at: now,
        }
        .into(),
        MemberAction::Erase { retention_days } => EraseMember {
            reason: text("member request"),
            at: now,
            retention_days,
        }
        .into(),
    }
}

/// The stage read straight off the events, independently of `MemberState`.
fn stage_from_events(events: &[MemberEvent]) -> Option<Stage> {
    events.iter().fold(None, |stage, event| match event {
        MemberEvent::MemberReferred(_) => Some(Stage::Referred),
        MemberEvent::IntakeCompleted(_) => Some(Stage::Intake),
        MemberEvent::MemberAdmitted(_) | MemberEvent::MemberReadmitted(_) => {
            Some(Stage::InTreatment)
        }
        MemberEvent::MemberDischarged(_) => Some(Stage::Discharged),
        MemberEvent::AftercareStarted(_) => Some(Stage::Aftercare),
        MemberEvent::AlumniEnrolled(_) => Some(Stage::Alumni),
        _ => stage,
    })
}

/// DOMAIN.md's pipeline: the stage moves (per decision) only along these arrows.
fn allowed_transition(from: Option<Stage>, to: Option<Stage>) -> bool {
    use Stage::*;
    from == to
        || matches!(
            (from, to),
            (None, Some(Referred))
                | (Some(Referred), Some(Intake))
                | (Some(Intake), Some(InTreatment))
                | (Some(InTreatment), Some(Discharged | Aftercare))
                | (Some(Discharged | Aftercare | Alumni), Some(InTreatment))
                | (Some(Aftercare), Some(Alumni))
        )
}

type Recorded = Vec<(OffsetDateTime, MemberEvent)>;

fn run_member(steps: Vec<(i64, MemberAction)>) -> Result<(MemberState, Recorded), TestCaseError> {
    let mut state = MemberState::default();
    let mut recorded: Recorded = vec![];
    let mut now = start();
    for (advance_hours, action) in steps {
        now += Duration::hours(advance_hours);
        let command = member_command(action, &state, now);
        let decided = crate::member::decide(&state, command.clone());
        prop_assert_eq!(
            &decided,
            &crate::member::decide(&state, command),
            "decide is deterministic"
        );
        let Ok(new) = decided else { continue };
        prop_assert!(
            !state.erased() || new.is_empty(),
            "nothing is recorded after erasure"
        );
        for event in &new {
            let stored = MemberEvent::from_stored(
                event.event_type(),
                event.schema_version(),
                event.to_data(),
            );
            prop_assert_eq!(stored.as_ref(), Ok(event));
        }
        let before = state.stage();
        state = new.iter().fold(state, |s, e| s.evolve(e));
        recorded.extend(new.into_iter().map(|e| (now, e)));
        let events: Vec<MemberEvent> = recorded.iter().map(|(_, e)| e.clone()).collect();
        prop_assert!(
            allowed_transition(before, state.stage()),
            "stage moved from {:?} to {:?}",
            before,
            state.stage()
        );
        prop_assert_eq!(state.stage(), stage_from_events(&events));
        prop_assert_eq!(state.version(), events.len() as u64);
        prop_assert_eq!(&MemberState::from_events(&events), &state);
        prop_assert_eq!(
            state.consecutive_missed_check_ins(),
            engagement::consecutive_missed_check_ins(&events)
        );
        prop_assert_eq!(&timeline::member_as_of(&recorded, now), &state);
    }
    Ok((state, recorded))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn no_sequence_of_group_commands_overfills_a_group_or_breaks_replay(
        actions in proptest::collection::vec(group_action(), 0..60)
    ) {
        run_group(actions)?;
    }

    #[test]
    fn the_group_state_agrees_with_the_engagement_views(
        actions in proptest::collection::vec(group_action(), 0..60)
    ) {
        let (state, events) = run_group(actions)?;
        for m in 0..MEMBERS {
            let member = member(m);
            for day in 0..18 {
                let at = start() + Duration::days(day);
                prop_assert_eq!(
                    state.sessions_attended(member, at),
                    engagement::sessions_attended(member, &events, at)
                );
            }
            prop_assert_eq!(
                state.consecutive_absences(member),
                engagement::consecutive_absences(member, &events)
            );
        }
        prop_assert!((state.attendance_rate() - engagement::attendance_rate(&events)).abs() < 1e-12);
    }

    #[test]
    fn no_sequence_of_member_commands_breaks_the_pipeline_or_replay(
        steps in proptest::collection::vec(member_action(), 0..60)
    ) {
        let (state, recorded) = run_member(steps)?;
        let last = recorded.last().map_or(start(), |(at, _)| *at);
        prop_assert_eq!(timeline::stage_as_of(&recorded, last), state.stage());
    }
}
