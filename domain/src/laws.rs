//! Laws over generated command sequences (proptest); each of them can fail.
//!
//! A scenario starts where the rules get interesting (a group is formed; a member is
//! referred, assessed and admitted) and runs 20 to 100 abstract actions, each made
//! concrete against the current state so that most are valid: joins mostly of members
//! in treatment, sessions recorded on time or days late, runs of missed check-ins,
//! discharges mostly completed; some are invalid on purpose (a stranger in the
//! attendance, a backdated join, a check-in that is not due). Time advances between
//! steps, every event is recorded at its step's instant, and the state after each step
//! is kept as a snapshot.
//!
//! Beside the deciders, the test keeps its own ledger of the accepted commands (who
//! joined and left when, the attendance each session was given and its corrections,
//! the check-ins missed), and checks:
//! - groups: the roster never exceeds capacity, at any time; every recorded session
//!   lists exactly the ledger's roster at its held time; the state's and the engagement
//!   views' numbers (sessions attended in a week, runs of absences, who stopped
//!   attending, attendance rate) equal counts taken from the ledger;
//! - members: the one stage agrees with an independent reading of the events and moves
//!   only along DOMAIN.md's arrows; the pipeline's dates never run backwards; nothing is
//!   recorded after erasure; the run of missed check-ins equals the ledger's;
//! - both: decide is deterministic; the stream read back from its stored form (type
//!   name, schema version, data) folds to each step's snapshot; time travel
//!   (`member_as_of`, `group_as_of`) at each step's instant, between steps, before the
//!   first and after the last gives the snapshot of the last step recorded by then.
//!
//! `generators_reach_the_interesting_states` shows how often scenarios reach a full
//! group, a member who stopped attending, a session recorded late after the roster
//! changed, two missed check-ins in a row, aftercare, alumni and readmission.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fmt::Debug;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::engagement;
use crate::group::{
    Attendance, CancelSession, CloseGroup, CorrectAttendance, FormGroup, GroupCommand, GroupEvent,
    GroupState, JoinGroup, LeaveGroup, RecordSession, ScheduleSession,
};
use crate::ids::*;
use crate::member::*;
use crate::payload::StoredEvent;
use crate::timeline;
use crate::values::*;

use AttendanceStatus::{Absent, Excused, Late, Present};

fn start() -> OffsetDateTime {
    time::macros::datetime!(2026-03-02 09:00 UTC)
}

fn text(s: &str) -> Text {
    Text::parse("text", s).unwrap()
}

fn pick<T: Copy>(all: &[T], n: usize) -> T {
    all[n % all.len()]
}

fn hours(n: i64) -> Duration {
    Duration::hours(n)
}

/// Mostly now; sometimes a command dated up to about a week back.
fn backdate() -> impl Strategy<Value = i64> {
    prop_oneof![8 => Just(0i64), 1 => 1i64..200]
}

// ---- shared laws: stored replay and time travel ---------------------------------------

/// The state after a step that recorded events, and how many events were recorded by then.
#[derive(Debug, Clone)]
struct Snapshot<S> {
    at: OffsetDateTime,
    events: usize,
    state: S,
}

/// The stream read back from its stored form folds to every snapshot.
fn stored_replay_matches<E, S>(
    recorded: &[(OffsetDateTime, E)],
    snapshots: &[Snapshot<S>],
    evolve: impl Fn(S, &E) -> S,
) -> Result<(), TestCaseError>
where
    E: StoredEvent + Debug + PartialEq,
    S: Default + PartialEq + Debug,
{
    let mut state = S::default();
    let mut folded = 0;
    for snapshot in snapshots {
        for (_, event) in &recorded[folded..snapshot.events] {
            let read = E::from_stored(event.event_type(), event.schema_version(), event.to_data());
            prop_assert_eq!(read.as_ref(), Ok(event), "the stored form reads back");
            state = evolve(state, &read.unwrap());
        }
        folded = snapshot.events;
        prop_assert_eq!(
            &state,
            &snapshot.state,
            "the stored stream's first {} events fold to the state after that step",
            folded
        );
    }
    Ok(())
}

/// As of each step's instant, between steps, before the first and after the last, time
/// travel gives the snapshot of the last step recorded by then.
fn time_travel_matches<E, S>(
    recorded: &[(OffsetDateTime, E)],
    snapshots: &[Snapshot<S>],
    as_of: impl Fn(&[(OffsetDateTime, E)], OffsetDateTime) -> S,
) -> Result<(), TestCaseError>
where
    S: Default + Clone + PartialEq + Debug,
{
    let expected = |t: OffsetDateTime| {
        snapshots
            .iter()
            .rev()
            .find(|s| s.at <= t)
            .map_or_else(S::default, |s| s.state.clone())
    };
    let (Some(first), Some(last)) = (snapshots.first(), snapshots.last()) else {
        return Ok(());
    };
    let mut instants = vec![
        first.at - Duration::seconds(1),
        last.at,
        last.at + Duration::days(1),
    ];
    for pair in snapshots.windows(2) {
        instants.push(pair[0].at);
        if pair[1].at > pair[0].at {
            instants.push(pair[0].at + (pair[1].at - pair[0].at) / 2);
        }
    }
    for t in instants {
        prop_assert_eq!(as_of(recorded, t), expected(t), "as of {}", t);
    }
    Ok(())
}

// ---- groups ---------------------------------------------------------------------------

const MEMBERS: usize = 8;

fn member(n: usize) -> MemberId {
    MemberId::new(Uuid::from_u128(0x1000 + n as u128))
}

fn stranger() -> MemberId {
    member(MEMBERS + 1)
}

fn session(n: usize) -> SessionId {
    SessionId::new(Uuid::from_u128(0x2000 + n as u128))
}

/// A session id no session of the group has (ids are handed out in order).
fn fresh_session(state: &GroupState) -> SessionId {
    session(state.sessions().len())
}

#[derive(Debug, Clone)]
enum Shape {
    /// The roster at the held time: valid.
    Exact,
    /// The roster now, which differs from then if the session is recorded late after a change.
    RosterNow,
    DropOne,
    AddStranger,
    Duplicate,
}

#[derive(Debug, Clone)]
enum GroupAction {
    Join {
        member: usize,
        stage: Option<Stage>,
        backdate_hours: i64,
    },
    Leave {
        pick: usize,
        backdate_hours: i64,
    },
    Schedule {
        ahead_hours: i64,
    },
    Record {
        target: usize,
        late_hours: i64,
        statuses: Vec<AttendanceStatus>,
        shape: Shape,
    },
    Cancel {
        pick: usize,
    },
    Correct {
        pick: usize,
        member: usize,
        to: AttendanceStatus,
    },
    Close,
}

#[derive(Debug, Clone)]
struct GroupScenario {
    capacity: u8,
    alumni: bool,
    steps: Vec<(i64, GroupAction)>,
}

/// Mostly members in treatment, who may join any group.
fn join_stage() -> impl Strategy<Value = Option<Stage>> {
    prop_oneof![
        14 => Just(Some(Stage::InTreatment)),
        2 => Just(Some(Stage::Aftercare)),
        1 => Just(Some(Stage::Alumni)),
        1 => prop::sample::select(vec![Stage::Referred, Stage::Intake, Stage::Discharged]).prop_map(Some),
        1 => Just(None),
    ]
}

/// Absences are common enough that runs of two happen.
fn status() -> impl Strategy<Value = AttendanceStatus> {
    prop_oneof![5 => Just(Present), 1 => Just(Late), 1 => Just(Excused), 4 => Just(Absent)]
}

fn group_action() -> impl Strategy<Value = GroupAction> {
    let shape = prop_oneof![
        16 => Just(Shape::Exact),
        2 => Just(Shape::RosterNow),
        1 => Just(Shape::DropOne),
        1 => Just(Shape::AddStranger),
        1 => Just(Shape::Duplicate),
    ];
    prop_oneof![
        60 => (0..MEMBERS, join_stage(), backdate()).prop_map(|(member, stage, backdate_hours)| {
            GroupAction::Join { member, stage, backdate_hours }
        }),
        15 => (any::<usize>(), backdate())
            .prop_map(|(pick, backdate_hours)| GroupAction::Leave { pick, backdate_hours }),
        12 => (1i64..72).prop_map(|ahead_hours| GroupAction::Schedule { ahead_hours }),
        60 => (
            0usize..4,
            prop_oneof![2 => Just(0i64), 1 => 1i64..120],
            proptest::collection::vec(status(), MEMBERS),
            shape,
        )
            .prop_map(|(target, late_hours, statuses, shape)| GroupAction::Record {
                target,
                late_hours,
                statuses,
                shape
            }),
        6 => any::<usize>().prop_map(|pick| GroupAction::Cancel { pick }),
        18 => (any::<usize>(), any::<usize>(), status())
            .prop_map(|(pick, member, to)| GroupAction::Correct { pick, member, to }),
        1 => Just(GroupAction::Close),
    ]
}

fn group_scenario() -> impl Strategy<Value = GroupScenario> {
    (
        1u8..=6,
        prop::bool::weighted(0.3),
        proptest::collection::vec((0i64..36, group_action()), 20..100),
    )
        .prop_map(|(capacity, alumni, steps)| GroupScenario {
            capacity,
            alumni,
            steps,
        })
}

fn group_command(action: GroupAction, state: &GroupState, now: OffsetDateTime) -> GroupCommand {
    match action {
        GroupAction::Join {
            member: m,
            stage,
            backdate_hours,
        } => JoinGroup {
            member: member(m),
            member_stage: stage,
            at: now - hours(backdate_hours),
        }
        .into(),
        GroupAction::Leave {
            pick: n,
            backdate_hours,
        } => LeaveGroup {
            member: if state.roster().is_empty() {
                member(n % MEMBERS)
            } else {
                pick(state.roster(), n)
            },
            reason: text("left"),
            at: now - hours(backdate_hours),
        }
        .into(),
        GroupAction::Schedule { ahead_hours } => ScheduleSession {
            session: fresh_session(state),
            starts_at: now + hours(ahead_hours),
            topic: text("topic"),
            at: now,
        }
        .into(),
        GroupAction::Record {
            target,
            late_hours,
            statuses,
            shape,
        } => {
            let held_at = now - hours(late_hours);
            let scheduled: Vec<SessionId> = state
                .sessions()
                .iter()
                .filter(|s| s.status == SessionStatus::Scheduled)
                .map(|s| s.id)
                .collect();
            let id = match target {
                0 | 1 if !scheduled.is_empty() => pick(&scheduled, late_hours as usize),
                3 if !state.sessions().is_empty() => {
                    state.sessions()[late_hours as usize % state.sessions().len()].id
                }
                _ => fresh_session(state),
            };
            let roster = match shape {
                Shape::RosterNow => state.roster().to_vec(),
                _ => state.roster_at(held_at),
            };
            let mut attendance: Vec<Attendance> = roster
                .iter()
                .zip(&statuses)
                .map(|(&member_id, &status)| Attendance { member_id, status })
                .collect();
            match shape {
                Shape::Exact | Shape::RosterNow => {}
                Shape::DropOne => {
                    attendance.pop();
                }
                Shape::AddStranger => attendance.push(Attendance {
                    member_id: stranger(),
                    status: Present,
                }),
                Shape::Duplicate => {
                    if let Some(first) = attendance.first().copied() {
                        attendance.push(first);
                    }
                }
            }
            RecordSession {
                session: id,
                planned: false,
                held_at,
                topic: text("topic"),
                duration: SessionMinutes::DEFAULT,
                attendance,
            }
            .into()
        }
        GroupAction::Cancel { pick: n } => CancelSession {
            session: if state.sessions().is_empty() {
                fresh_session(state)
            } else {
                state.sessions()[n % state.sessions().len()].id
            },
            reason: text("cancelled"),
            at: now,
        }
        .into(),
        GroupAction::Correct {
            pick: n,
            member: m,
            to,
        } => {
            let held: Vec<_> = state
                .sessions()
                .iter()
                .filter(|s| s.status == SessionStatus::Held)
                .collect();
            let (session, member) = match held.get(n % held.len().max(1)) {
                // Mostly someone in that session's attendance, sometimes anyone.
                Some(s) if !s.attendance.is_empty() && m % 5 != 0 => {
                    (s.id, s.attendance[m % s.attendance.len()].member_id)
                }
                Some(s) => (s.id, member(m % MEMBERS)),
                None => (fresh_session(state), member(m % MEMBERS)),
            };
            CorrectAttendance {
                session,
                member,
                to,
                reason: text("correction"),
                at: now,
            }
            .into()
        }
        GroupAction::Close => CloseGroup {
            reason: text("closed"),
            at: now,
        }
        .into(),
    }
}

/// The test's own account of a group, from the commands the decider accepted.
#[derive(Debug, Default)]
struct GroupLedger {
    /// (member, joined at, left at) per join, in order.
    stints: Vec<(MemberId, OffsetDateTime, Option<OffsetDateTime>)>,
    sessions: Vec<LedgerSession>,
}

/// (session, held at, attendance as given, then corrected).
type LedgerSession = (SessionId, OffsetDateTime, Vec<(MemberId, AttendanceStatus)>);

impl GroupLedger {
    fn accept(&mut self, command: &GroupCommand) {
        match command {
            GroupCommand::JoinGroup(c) => self.stints.push((c.member, c.at, None)),
            GroupCommand::LeaveGroup(c) => {
                if let Some(stint) = self
                    .stints
                    .iter_mut()
                    .find(|(m, _, left)| *m == c.member && left.is_none())
                {
                    stint.2 = Some(c.at);
                }
            }
            GroupCommand::RecordSession(c) => self.sessions.push((
                c.session,
                c.held_at,
                c.attendance
                    .iter()
                    .map(|a| (a.member_id, a.status))
                    .collect(),
            )),
            GroupCommand::CorrectAttendance(c) => {
                for (_, _, list) in self.sessions.iter_mut().filter(|s| s.0 == c.session) {
                    for entry in list.iter_mut().filter(|(m, _)| *m == c.member) {
                        entry.1 = c.to;
                    }
                }
            }
            _ => {}
        }
    }

    fn roster_at(&self, at: OffsetDateTime) -> BTreeSet<MemberId> {
        self.stints
            .iter()
            .filter(|(_, joined, left)| *joined <= at && left.is_none_or(|left| at < left))
            .map(|(m, _, _)| *m)
            .collect()
    }

    fn roster_now(&self) -> Vec<MemberId> {
        self.stints
            .iter()
            .filter(|(_, _, left)| left.is_none())
            .map(|(m, _, _)| *m)
            .collect()
    }

    fn attended(&self, member: MemberId, at: OffsetDateTime) -> u32 {
        let mut count = 0;
        for (_, held_at, list) in &self.sessions {
            let in_week = *held_at > at - Duration::days(7) && *held_at <= at;
            if in_week && (list.contains(&(member, Present)) || list.contains(&(member, Late))) {
                count += 1;
            }
        }
        count
    }

    /// Absences since the member last attended, counting only sessions since their
    /// latest join; excused ones neither count nor end the run.
    fn absences(&self, member: MemberId) -> u32 {
        let since = self
            .stints
            .iter()
            .rev()
            .find(|(m, _, _)| *m == member)
            .map(|(_, joined, _)| *joined);
        let mut mine: Vec<(OffsetDateTime, SessionId, AttendanceStatus)> = self
            .sessions
            .iter()
            .filter(|(_, held_at, _)| since.is_none_or(|joined| *held_at >= joined))
            .flat_map(|(id, held_at, list)| {
                list.iter()
                    .filter(|(m, _)| *m == member)
                    .map(|(_, status)| (*held_at, *id, *status))
            })
            .collect();
        mine.sort();
        let mut run = 0;
        for (_, _, status) in mine {
            match status {
                Absent => run += 1,
                Present | Late => run = 0,
                Excused => {}
            }
        }
        run
    }

    fn stopped_attending(&self) -> Vec<(MemberId, u32)> {
        self.roster_now()
            .into_iter()
            .map(|m| (m, self.absences(m)))
            .filter(|(_, run)| *run >= 2)
            .collect()
    }

    fn rate(&self) -> f64 {
        let all: Vec<AttendanceStatus> = self
            .sessions
            .iter()
            .flat_map(|(_, _, list)| list.iter().map(|(_, s)| *s))
            .collect();
        let attended = all.iter().filter(|s| matches!(s, Present | Late)).count();
        if all.is_empty() {
            0.0
        } else {
            attended as f64 / all.len() as f64
        }
    }
}

#[derive(Debug, Default)]
struct GroupRun {
    capacity: usize,
    recorded: Vec<(OffsetDateTime, GroupEvent)>,
    snapshots: Vec<Snapshot<GroupState>>,
    ledger: GroupLedger,
    reached_full: bool,
    reached_stopped_attending: bool,
    recorded_late_after_a_roster_change: bool,
}

fn run_group(scenario: GroupScenario) -> Result<GroupRun, TestCaseError> {
    let mut run = GroupRun {
        capacity: usize::from(scenario.capacity),
        ..GroupRun::default()
    };
    let mut state = GroupState::default();
    let mut now = start();
    let form = FormGroup {
        group: GroupId::new(Uuid::from_u128(0x3000)),
        name: text("group"),
        model: GroupModel::Support,
        facilitator: None,
        capacity: Capacity::new(i64::from(scenario.capacity)).unwrap(),
        schedule: None,
        alumni: scenario.alumni,
        online: false,
        at: now,
    };
    group_step(&mut state, &mut run, now, form.into())?;
    prop_assert!(
        state.profile().is_some(),
        "every scenario starts with a formed group"
    );
    for (advance, action) in scenario.steps {
        now += hours(advance);
        let command = group_command(action, &state, now);
        group_step(&mut state, &mut run, now, command)?;
    }
    Ok(run)
}

fn group_step(
    state: &mut GroupState,
    run: &mut GroupRun,
    now: OffsetDateTime,
    command: GroupCommand,
) -> Result<(), TestCaseError> {
    let decided = crate::group::decide(state, command.clone());
    prop_assert_eq!(
        &decided,
        &crate::group::decide(state, command.clone()),
        "decide is deterministic"
    );
    let Ok(new) = decided else { return Ok(()) };
    if let GroupCommand::RecordSession(c) = &command {
        run.recorded_late_after_a_roster_change |=
            c.held_at < now && state.roster_at(c.held_at) != state.roster();
    }
    run.ledger.accept(&command);
    *state = new.iter().fold(std::mem::take(state), |s, e| s.evolve(e));
    run.recorded.extend(new.into_iter().map(|e| (now, e)));
    run.snapshots.push(Snapshot {
        at: now,
        events: run.recorded.len(),
        state: state.clone(),
    });
    prop_assert!(
        state.roster().len() <= run.capacity,
        "roster above capacity"
    );
    run.reached_full |= state.roster().len() == run.capacity;
    run.reached_stopped_attending |= !run.ledger.stopped_attending().is_empty();
    Ok(())
}

fn group_laws(run: &GroupRun) -> Result<(), TestCaseError> {
    let Some(last) = run.snapshots.last() else {
        return Ok(());
    };
    let state = &last.state;
    let events: Vec<GroupEvent> = run.recorded.iter().map(|(_, e)| e.clone()).collect();

    // The roster, at every time a member joined, is within capacity.
    for (_, joined, _) in &run.ledger.stints {
        prop_assert!(run.ledger.roster_at(*joined).len() <= run.capacity);
    }

    // Every recorded session lists exactly the roster at its held time, each member once.
    let held: Vec<_> = state
        .sessions()
        .iter()
        .filter(|s| s.status == SessionStatus::Held)
        .collect();
    prop_assert_eq!(held.len(), run.ledger.sessions.len());
    for s in held {
        let listed: Vec<MemberId> = s.attendance.iter().map(|a| a.member_id).collect();
        let set: BTreeSet<MemberId> = listed.iter().copied().collect();
        prop_assert_eq!(listed.len(), set.len(), "a member listed twice");
        prop_assert_eq!(&set, &run.ledger.roster_at(s.held_at.unwrap()));
    }

    stored_replay_matches(&run.recorded, &run.snapshots, GroupState::evolve)?;
    time_travel_matches(&run.recorded, &run.snapshots, timeline::group_as_of)?;

    // Engagement: the state and the views against the ledger's own counts, on session
    // days and at the edges of their 7-day windows.
    let mut instants: Vec<OffsetDateTime> = run
        .ledger
        .sessions
        .iter()
        .flat_map(|(_, held_at, _)| {
            let week_later = *held_at + Duration::days(7);
            [*held_at, week_later - Duration::seconds(1), week_later]
        })
        .collect();
    instants.sort();
    instants.dedup();
    let members: Vec<MemberId> = (0..MEMBERS).map(member).chain([stranger()]).collect();
    for (i, at) in instants.iter().enumerate() {
        for &m in &members {
            let expected = run.ledger.attended(m, *at);
            prop_assert_eq!(
                state.sessions_attended(m, *at),
                expected,
                "state, {} at {}",
                m,
                at
            );
            // The view folds every event each call: check it on every third instant.
            if i % 3 == 0 {
                prop_assert_eq!(
                    engagement::sessions_attended(m, &events, *at),
                    expected,
                    "view, {} at {}",
                    m,
                    at
                );
            }
        }
    }
    for &m in &members {
        let expected = run.ledger.absences(m);
        prop_assert_eq!(state.consecutive_absences(m), expected);
        prop_assert_eq!(engagement::consecutive_absences(m, &events), expected);
    }
    let stopped = run.ledger.stopped_attending();
    prop_assert_eq!(&state.members_who_stopped_attending(), &stopped);
    prop_assert_eq!(
        &engagement::members_who_stopped_attending(&events),
        &stopped
    );
    prop_assert!((state.attendance_rate() - run.ledger.rate()).abs() < 1e-9);
    prop_assert!((engagement::attendance_rate(&events) - run.ledger.rate()).abs() < 1e-9);
    Ok(())
}

// ---- members --------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum MemberAction {
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
        fresh: bool,
        n: usize,
        due_in_hours: i64,
    },
    CompleteCheckIn {
        pick: usize,
    },
    MarkMissed {
        pick: usize,
    },
    /// Schedules check-ins already due and marks them missed, one after another.
    MissedRun {
        count: usize,
    },
    Discharge {
        reason: DischargeReason,
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
    /// A change of details: a name from a few (or kept); email and phone kept (0), set (1)
    /// or removed (2).
    ChangeDetails {
        name: Option<usize>,
        email: usize,
        phone: usize,
    },
    Erase {
        retention_days: u32,
    },
}

/// (hours to advance, hours to backdate the command, action)
type MemberStep = (i64, i64, MemberAction);

fn member_action() -> impl Strategy<Value = MemberAction> {
    let reason = prop_oneof![
        6 => Just(DischargeReason::Completed),
        2 => Just(DischargeReason::AgainstAdvice),
        1 => Just(DischargeReason::Transferred),
        1 => Just(DischargeReason::Administrative),
    ];
    prop_oneof![
        4 => (0usize..5).prop_map(|level| MemberAction::ChangeLevel { level }),
        4 => (0u128..3, 0usize..2, proptest::option::of(1i64..2000))
            .prop_map(|(n, scope, expires_in_hours)| MemberAction::GiveConsent { n, scope, expires_in_hours }),
        2 => (0u128..3).prop_map(|n| MemberAction::RevokeConsent { n }),
        1 => (0usize..2).prop_map(|scope| MemberAction::RevokeScope { scope }),
        2 => (0u128..3).prop_map(|n| MemberAction::SetGoal { n }),
        2 => (0u128..3).prop_map(|n| MemberAction::AchieveGoal { n }),
        10 => (prop::bool::weighted(0.9), any::<usize>(), -24i64..72)
            .prop_map(|(fresh, n, due_in_hours)| MemberAction::ScheduleCheckIn { fresh, n, due_in_hours }),
        6 => any::<usize>().prop_map(|pick| MemberAction::CompleteCheckIn { pick }),
        8 => any::<usize>().prop_map(|pick| MemberAction::MarkMissed { pick }),
        4 => (2usize..4).prop_map(|count| MemberAction::MissedRun { count }),
        5 => (reason, proptest::collection::vec(0u16..400, 0..4))
            .prop_map(|(reason, offsets)| MemberAction::Discharge { reason, offsets }),
        5 => any::<usize>().prop_map(|pick| MemberAction::FollowUpDue { pick }),
        4 => (any::<usize>(), 0usize..5).prop_map(|(pick, outcome)| MemberAction::RecordFollowUp { pick, outcome }),
        6 => Just(MemberAction::EnrollAlumni),
        5 => (0usize..5).prop_map(|level| MemberAction::Readmit { level }),
        3 => (0u128..3, 0u128..3, any::<bool>())
            .prop_map(|(n, consent, named)| MemberAction::Disclose { n, consent, named }),
        2 => (proptest::option::of(0usize..3), 0usize..3, 0usize..3)
            .prop_map(|(name, email, phone)| MemberAction::ChangeDetails { name, email, phone }),
        1 => prop_oneof![3 => 0u32..400, 1 => any::<u32>()]
            .prop_map(|retention_days| MemberAction::Erase { retention_days }),
    ]
}

fn member_scenario() -> impl Strategy<Value = Vec<MemberStep>> {
    proptest::collection::vec((0i64..72, backdate(), member_action()), 20..100)
}

fn the_member() -> MemberId {
    MemberId::new(Uuid::from_u128(0xA11E))
}

fn check_in(n: usize) -> CheckInId {
    CheckInId::new(Uuid::from_u128(0x5000 + n as u128))
}

fn member_command(
    action: MemberAction,
    state: &MemberState,
    now: OffsetDateTime,
    at: OffsetDateTime,
) -> MemberCommand {
    let level = |n| pick(LevelOfCare::ALL, n);
    let consent = |n: u128| ConsentId::new(Uuid::from_u128(0x4000 + n));
    let follow_up = |candidates: Vec<FollowUpId>, n: usize| {
        let all: Vec<FollowUpId> = state.follow_ups().iter().map(|f| f.id).collect();
        if !candidates.is_empty() {
            pick(&candidates, n)
        } else if !all.is_empty() {
            pick(&all, n)
        } else {
            FollowUpId::new(Uuid::from_u128(0x6000))
        }
    };
    match action {
        MemberAction::ChangeLevel { level: l } => ChangeLevelOfCare {
            to: level(l),
            reason: text("step"),
            at,
        }
        .into(),
        MemberAction::GiveConsent {
            n,
            scope,
            expires_in_hours,
        } => GiveConsent {
            expires_at: expires_in_hours.map(|h| at + hours(h)),
            ..GiveConsent::short_form(consent(n), pick(ConsentScope::ALL, scope), at)
        }
        .into(),
        MemberAction::RevokeConsent { n } => RevokeConsent {
            consent: consent(n),
            how_received: text("orally"),
            at,
        }
        .into(),
        MemberAction::RevokeScope { scope } => RevokeConsentsOfScope {
            scope: pick(ConsentScope::ALL, scope),
            how_received: text("orally"),
            at,
        }
        .into(),
        MemberAction::SetGoal { n } => SetGoal {
            goal: GoalId::new(Uuid::from_u128(0x7000 + n)),
            text: text("goal"),
            at,
        }
        .into(),
        MemberAction::AchieveGoal { n } => AchieveGoal {
            goal: GoalId::new(Uuid::from_u128(0x7000 + n)),
            at,
        }
        .into(),
        MemberAction::ScheduleCheckIn {
            fresh,
            n,
            due_in_hours,
        } => {
            let count = state.check_ins().len();
            ScheduleCheckIn {
                check_in: check_in(if fresh { count } else { n % (count + 1) }),
                due_at: now + hours(due_in_hours),
                channel: CheckInChannel::App,
                at,
            }
            .into()
        }
        MemberAction::CompleteCheckIn { pick: n } => {
            let open: Vec<CheckInId> = state
                .check_ins()
                .iter()
                .filter(|c| c.status == CheckInStatus::Scheduled)
                .map(|c| c.id)
                .collect();
            CompleteCheckIn {
                check_in: if open.is_empty() {
                    check_in(999)
                } else {
                    pick(&open, n)
                },
                mood: Mood::new(3).unwrap(),
                craving: Craving::new(3).unwrap(),
                used: false,
                at,
            }
            .into()
        }
        MemberAction::MarkMissed { pick: n } => {
            let overdue = state.overdue_check_ins(now);
            let any: Vec<CheckInId> = state.check_ins().iter().map(|c| c.id).collect();
            MarkCheckInMissed {
                check_in: match (overdue.is_empty(), any.is_empty()) {
                    (false, _) => pick(&overdue, n),
                    (true, false) => pick(&any, n),
                    (true, true) => check_in(999),
                },
                now,
            }
            .into()
        }
        MemberAction::MissedRun { .. } => unreachable!("expanded before the run"),
        MemberAction::Discharge { reason, offsets } => {
            let mut command = DischargeMember::new(reason, at);
            if !offsets.is_empty() {
                command.follow_up_offsets_days = offsets;
            }
            command.into()
        }
        MemberAction::FollowUpDue { pick: n } => MarkFollowUpDue {
            follow_up: follow_up(state.follow_ups_falling_due(now), n),
            now,
        }
        .into(),
        MemberAction::RecordFollowUp { pick: n, outcome } => RecordFollowUp {
            follow_up: follow_up(vec![], n),
            outcome: pick(FollowUpOutcome::ALL, outcome),
            at,
        }
        .into(),
        MemberAction::EnrollAlumni => EnrollAlumni { at }.into(),
        MemberAction::Readmit { level: l } => ReadmitMember {
            level_of_care: level(l),
            primary_counselor: None,
            at,
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
            at,
        }
        .into(),
        MemberAction::ChangeDetails { name, email, phone } => {
            fn change<T>(how: usize, value: impl FnOnce() -> T) -> DetailChange<T> {
                match how {
                    0 => DetailChange::Keep,
                    1 => DetailChange::Set(value()),
                    _ => DetailChange::Remove,
                }
            }
            ChangeMemberDetails {
                name: name
                    .map(|n| PersonName::parse(pick(&["Ann", "Ann Okafor", "Anne"], n)).unwrap()),
                email: change(email, || Email::parse("ann@example.org").unwrap()),
                phone: change(phone, || Phone::parse("+1 555 010 2030").unwrap()),
                at,
            }
            .into()
        }
        MemberAction::Erase { retention_days } => EraseMember {
            reason: text("member request"),
            at,
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

/// The pipeline's dates never run backwards: each step is dated no earlier than the one
/// before it, and a change of level of care no earlier than the admission it follows.
fn pipeline_dates_in_order(events: &[MemberEvent]) -> Result<(), TestCaseError> {
    let mut previous: Option<OffsetDateTime> = None;
    let mut admitted: Option<OffsetDateTime> = None;
    for event in events {
        let step = match event {
            MemberEvent::MemberReferred(e) => Some(e.referred_at),
            MemberEvent::IntakeCompleted(e) => Some(e.completed_at),
            MemberEvent::MemberAdmitted(e) => Some(e.admitted_at),
            MemberEvent::MemberReadmitted(e) => Some(e.readmitted_at),
            MemberEvent::MemberDischarged(e) => Some(e.discharged_at),
            MemberEvent::LevelOfCareChanged(e) => {
                prop_assert!(admitted.is_some_and(|a| a <= e.changed_at), "{:?}", e);
                None
            }
            _ => None,
        };
        if let Some(at) = step {
            prop_assert!(
                previous.is_none_or(|p| p <= at),
                "{:?} dated before {:?}",
                event,
                previous
            );
            previous = Some(at);
        }
        if let MemberEvent::MemberAdmitted(e) = event {
            admitted = Some(e.admitted_at);
        }
        if let MemberEvent::MemberReadmitted(e) = event {
            admitted = Some(e.readmitted_at);
        }
    }
    Ok(())
}

#[derive(Debug, Default)]
struct MemberRun {
    recorded: Vec<(OffsetDateTime, MemberEvent)>,
    snapshots: Vec<Snapshot<MemberState>>,
    /// The ledger: missed check-ins in a row, from the accepted commands.
    missed_in_a_row: u32,
    reached_outreach: bool,
    reached_aftercare: bool,
    reached_alumni: bool,
    readmitted: bool,
}

fn run_member(steps: Vec<MemberStep>) -> Result<MemberRun, TestCaseError> {
    let mut run = MemberRun::default();
    let mut state = MemberState::default();
    let mut now = start();
    let admission: [MemberCommand; 3] = [
        ReferMember {
            member: the_member(),
            name: PersonName::parse("Ann").unwrap(),
            email: None,
            phone: None,
            source: ReferralSource::Family,
            primary_substance: None,
            at: now,
        }
        .into(),
        CompleteIntake {
            assessed_by: text("dr"),
            recommended_level: LevelOfCare::Residential,
            at: now + hours(1),
        }
        .into(),
        AdmitMember {
            level_of_care: LevelOfCare::Residential,
            primary_counselor: None,
            at: now + hours(2),
        }
        .into(),
    ];
    for command in admission {
        now += hours(1);
        member_step(&mut state, &mut run, now, command)?;
    }
    prop_assert_eq!(
        state.stage(),
        Some(Stage::InTreatment),
        "every scenario starts in treatment"
    );
    for (advance, backdate_hours, action) in steps {
        now += hours(advance);
        let at = now - hours(backdate_hours);
        let actions = match action {
            MemberAction::MissedRun { count } => (0..count)
                .flat_map(|_| {
                    [
                        MemberAction::ScheduleCheckIn {
                            fresh: true,
                            n: 0,
                            due_in_hours: -1,
                        },
                        MemberAction::MarkMissed { pick: usize::MAX },
                    ]
                })
                .collect(),
            other => vec![other],
        };
        for action in actions {
            let command = member_command(action, &state, now, at);
            member_step(&mut state, &mut run, now, command)?;
        }
    }
    Ok(run)
}

fn member_step(
    state: &mut MemberState,
    run: &mut MemberRun,
    now: OffsetDateTime,
    command: MemberCommand,
) -> Result<(), TestCaseError> {
    let decided = crate::member::decide(state, command.clone());
    prop_assert_eq!(
        &decided,
        &crate::member::decide(state, command.clone()),
        "decide is deterministic"
    );
    let Ok(new) = decided else { return Ok(()) };
    prop_assert!(
        !state.erased() || new.is_empty(),
        "nothing is recorded after erasure"
    );
    if new.is_empty() {
        return Ok(());
    }
    match command {
        MemberCommand::MarkCheckInMissed(_) => run.missed_in_a_row += 1,
        MemberCommand::CompleteCheckIn(_)
        | MemberCommand::DischargeMember(_)
        | MemberCommand::ReadmitMember(_) => run.missed_in_a_row = 0,
        _ => {}
    }
    let before = state.stage();
    *state = new.iter().fold(std::mem::take(state), |s, e| s.evolve(e));
    run.recorded.extend(new.into_iter().map(|e| (now, e)));
    run.snapshots.push(Snapshot {
        at: now,
        events: run.recorded.len(),
        state: state.clone(),
    });
    let events: Vec<MemberEvent> = run.recorded.iter().map(|(_, e)| e.clone()).collect();
    prop_assert!(
        allowed_transition(before, state.stage()),
        "stage moved from {:?} to {:?}",
        before,
        state.stage()
    );
    prop_assert_eq!(state.stage(), stage_from_events(&events));
    prop_assert_eq!(state.consecutive_missed_check_ins(), run.missed_in_a_row);
    prop_assert_eq!(
        engagement::consecutive_missed_check_ins(&events),
        run.missed_in_a_row
    );
    run.reached_outreach |= engagement::needs_outreach(run.missed_in_a_row);
    run.reached_aftercare |= state.stage() == Some(Stage::Aftercare);
    run.reached_alumni |= state.stage() == Some(Stage::Alumni);
    run.readmitted |= state.episodes() > 1;
    Ok(())
}

fn member_laws(run: &MemberRun) -> Result<(), TestCaseError> {
    let events: Vec<MemberEvent> = run.recorded.iter().map(|(_, e)| e.clone()).collect();
    pipeline_dates_in_order(&events)?;
    stored_replay_matches(&run.recorded, &run.snapshots, MemberState::evolve)?;
    time_travel_matches(&run.recorded, &run.snapshots, timeline::member_as_of)?;
    for snapshot in &run.snapshots {
        prop_assert_eq!(
            timeline::stage_as_of(&run.recorded, snapshot.at),
            run.snapshots
                .iter()
                .rev()
                .find(|s| s.at == snapshot.at)
                .and_then(|s| s.state.stage())
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn group_laws_hold_for_any_sequence_of_group_commands(scenario in group_scenario()) {
        group_laws(&run_group(scenario)?)?;
    }

    #[test]
    fn member_laws_hold_for_any_sequence_of_member_commands(steps in member_scenario()) {
        member_laws(&run_member(steps)?)?;
    }
}

/// How often the generators reach the states the laws are about, on a fixed seed (so
/// the counts do not move between runs). Observed counts are in the assertions' comments.
#[test]
fn generators_reach_the_interesting_states() {
    const RUNS: usize = 100;
    let mut runner = TestRunner::deterministic();
    let (mut full, mut stopped, mut late) = (0, 0, 0);
    for _ in 0..RUNS {
        let scenario = group_scenario().new_tree(&mut runner).unwrap().current();
        let run = run_group(scenario).unwrap();
        full += usize::from(run.reached_full);
        stopped += usize::from(run.reached_stopped_attending);
        late += usize::from(run.recorded_late_after_a_roster_change);
    }
    let (mut outreach, mut aftercare, mut alumni, mut readmitted) = (0, 0, 0, 0);
    for _ in 0..RUNS {
        let steps = member_scenario().new_tree(&mut runner).unwrap().current();
        let run = run_member(steps).unwrap();
        outreach += usize::from(run.reached_outreach);
        aftercare += usize::from(run.reached_aftercare);
        alumni += usize::from(run.reached_alumni);
        readmitted += usize::from(run.readmitted);
    }
    // (what, how many scenarios reach it, the least accepted). Observed on this seed:
    // full 78, stopped 63, late 54, outreach 94, aftercare 81, alumni 52, readmission 86.
    let reached = [
        ("a full group", full, 60),
        ("a member who stopped attending", stopped, 50),
        ("a session recorded late after a roster change", late, 40),
        ("two missed check-ins in a row", outreach, 80),
        ("aftercare", aftercare, 60),
        ("alumni", alumni, 40),
        ("readmission", readmitted, 60),
    ];
    println!("{reached:?} of {RUNS} scenarios each");
    for (what, count, least) in reached {
        assert!(
            count >= least,
            "only {count} of {RUNS} scenarios reach {what} (expected at least {least})"
        );
    }
}
