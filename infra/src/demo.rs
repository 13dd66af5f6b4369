//! A demo clinic: months of realistic activity, decided by the domain's own rules and
//! appended through the event store (`clinic seed-demo`, and the rebuild benchmark's log).
//!
//! The simulation walks day by day up to the start of today: referrals arrive, most are
//! assessed and admitted, join a group and check in every few days (some miss), step down,
//! are discharged (most completing, which starts aftercare and its follow-ups), some enrol as
//! alumni and a few are readmitted. Groups meet two or three times a week and record
//! attendance for their whole roster, with the odd correction. Every command goes through
//! `decide` on the stream's folded state, so the log only holds what the rules allow; the
//! events are buffered per stream and appended every `flush_every_days` simulated days, so
//! streams interleave in the log as they would in a real clinic. Check-ins and follow-ups
//! falling due after the simulation's end are left for the real scheduler.
//!
//! Deterministic for a seed (ids included), except the `recorded_at` the store stamps.

mod names;

use std::collections::{BTreeMap, HashMap};

use clinic_domain::aftercare::DEFAULT_FOLLOW_UP_OFFSETS_DAYS;
use clinic_domain::group::{
    Attendance, CancelSession, CorrectAttendance, FormGroup, JoinGroup, LeaveGroup, RecordSession,
    ScheduleSession,
};
use clinic_domain::member::{
    AdmitMember, ChangeLevelOfCare, ChangeMemberDetails, CompleteCheckIn, CompleteIntake,
    DetailChange, DischargeMember, EnrollAlumni, GiveConsent, MarkCheckInMissed, MarkFollowUpDue,
    ReadmitMember, RecordFollowUp, ReferMember, ScheduleCheckIn,
};
use clinic_domain::values::{
    AftercarePlan, AttendanceStatus, Capacity, CheckInChannel, ConsentScope, Craving,
    DischargeReason, Email, FollowUpOutcome, FollowUpStatus, GroupModel, LevelOfCare, Mood,
    PersonName, ReferralSource, SessionMinutes, Stage, Text,
};
use clinic_domain::{
    CheckInId, ConsentId, Decider, GroupCommand, GroupDecider, GroupEvent, GroupId, GroupState,
    MemberCommand, MemberDecider, MemberEvent, MemberId, MemberState, SessionId, StoredEvent,
};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime, Time};
use uuid::Uuid;

use crate::clinic::ClinicId;
use crate::codec::{self, CodecError};
use crate::event_store::{
    EventStore, EventStoreError, ExpectedVersion, Metadata, NewEvent, StreamId,
};
use crate::keyring::Keyring;

/// Days after a discharge on which the alumni who move (one in eight with an address) record
/// their new email address.
const ADDRESS_CHANGE_AFTER_DAYS: u32 = 3;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOptions {
    /// The clinic to fill.
    pub clinic: ClinicId,
    /// Members referred over the whole period.
    pub members: u32,
    /// How many days the simulation covers, ending at the start of today.
    pub days: u32,
    /// The random seed (the same seed and options, the clinic among them, give the same
    /// history).
    pub seed: u64,
    /// Simulated days between appends: smaller interleaves streams more finely.
    pub flush_every_days: u32,
    /// Concurrent appends.
    pub writers: usize,
    /// Seal personal fields under member keys, as the service does. `false` only for the
    /// benchmarks that measure what sealing costs against the same log without it.
    pub seal: bool,
    /// The days after discharge that alumni follow-ups fall due: the clinic's own
    /// (`CLINIC_FOLLOW_UP_DAYS`), so a demo shows the schedule the service would plan.
    pub follow_up_days: Vec<u16>,
}

impl DemoOptions {
    /// The seed of [`DemoOptions::new`].
    pub const DEFAULT_SEED: u64 = 0x5eed;

    /// `members` members over `days` days in `clinic`, with defaults for the rest.
    pub fn new(clinic: ClinicId, members: u32, days: u32) -> Self {
        Self {
            clinic,
            members,
            days,
            seed: Self::DEFAULT_SEED,
            flush_every_days: 7,
            writers: 4,
            seal: true,
            follow_up_days: DEFAULT_FOLLOW_UP_OFFSETS_DAYS.to_vec(),
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoReport {
    /// Members referred.
    pub members: u32,
    /// Groups formed.
    pub groups: u32,
    /// Events appended.
    pub events: u64,
}

/// Fills `options.clinic` with a simulated history ending at the start of `now`'s day.
pub async fn seed_demo(
    store: &EventStore,
    keyring: &Keyring,
    options: &DemoOptions,
    now: OffsetDateTime,
) -> Result<DemoReport, SeedError> {
    let today = now.replace_time(Time::MIDNIGHT);
    let start = today - Duration::days(i64::from(options.days));
    let mut sim = Simulation::new(options, start);
    let mut events = 0;
    for day in 0..options.days {
        sim.simulate_day(day);
        if (day + 1) % options.flush_every_days.max(1) == 0 {
            events += sim.flush(store, keyring).await?;
        }
    }
    events += sim.flush(store, keyring).await?;
    Ok(DemoReport {
        members: u32::try_from(sim.members.len()).unwrap_or(u32::MAX),
        groups: u32::try_from(sim.groups.len()).unwrap_or(u32::MAX),
        events,
    })
}

/// SplitMix64: small, fast and good enough for demo data; no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in lo..=hi.
    fn between(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next() % u64::from(hi - lo + 1)) as u32
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }

    fn uuid(&mut self) -> Uuid {
        let bytes = (u128::from(self.next()) << 64 | u128::from(self.next())).to_be_bytes();
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

/// Where a simulated event's ids (its own and its correlation id) come from.
enum Ids {
    /// The generator's random stream, as for every step of the simulation.
    Drawn,
    /// Derived from the member's id and this name: an occasional fact that draws nothing, so
    /// everything else a seed produces is the same with or without it.
    Derived(String),
}

/// Events decided but not yet appended (with their ids and metadata), and the stream's
/// version in the store.
struct Pending<E> {
    events: Vec<(E, Uuid, Metadata)>,
    stored_version: u64,
}

impl<E> Default for Pending<E> {
    fn default() -> Self {
        Self {
            events: Vec::new(),
            stored_version: 0,
        }
    }
}

/// Why the demo could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The store refused an append.
    #[error(transparent)]
    Store(#[from] EventStoreError),
    /// An event could not be sealed (member keys unavailable).
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// One member's course through the pipeline, drawn at referral.
struct Plan {
    intake_day: Option<u32>,
    admit_day: Option<u32>,
    stay_days: u32,
    step_down: bool,
    reason: DischargeReason,
    alumni_after: Option<u32>,
    readmit_after: Option<u32>,
}

struct SimMember {
    id: MemberId,
    state: MemberState,
    pending: Pending<MemberEvent>,
    plan: Plan,
    /// Chance of attending a session.
    engagement: f64,
    counselor: String,
    groups: Vec<usize>,
    admitted_day: u32,
    discharge_day: Option<u32>,
    next_check_in_day: u32,
    open_check_in: Option<(CheckInId, u32)>,
    readmitted: bool,
}

struct SimGroup {
    id: GroupId,
    state: GroupState,
    pending: Pending<GroupEvent>,
    weekdays: Vec<u32>,
    alumni: bool,
}

struct Simulation {
    rng: Rng,
    clinic: ClinicId,
    writers: usize,
    seal: bool,
    follow_up_days: Vec<u16>,
    start: OffsetDateTime,
    days: u32,
    members_total: u32,
    members: Vec<SimMember>,
    index: HashMap<MemberId, usize>,
    groups: Vec<SimGroup>,
    agenda: BTreeMap<u32, Vec<usize>>,
}

/// A text of the simulation's own making (short, printable, non-empty: always valid).
fn text(field: &'static str, value: &str) -> Text {
    Text::parse(field, value).expect("demo texts are short, printable and non-empty")
}

impl Simulation {
    fn new(options: &DemoOptions, start: OffsetDateTime) -> Self {
        // The clinic is in the seed: two clinics seeded alike get ids of their own (the same
        // event ids would be refused as stored already).
        let clinic: [u8; 8] = Sha256::digest(options.clinic.as_str().as_bytes())[..8]
            .try_into()
            .expect("a digest is longer than 8 bytes");
        let mut rng =
            Rng(options.seed ^ u64::from(options.members) << 20 ^ u64::from_be_bytes(clinic));
        // Enough groups for those in treatment at once (about 36 days' admissions) at about
        // ten members each, plus a few alumni groups.
        let per_day = f64::from(options.members) / f64::from(options.days.max(1));
        let concurrent = per_day * 0.75 * 36.0;
        let treatment_groups = ((concurrent / 10.0).ceil() as u32).max(2);
        let alumni_groups = (treatment_groups / 8).max(1);
        let mut sim = Self {
            start,
            days: options.days,
            members_total: options.members,
            members: Vec::with_capacity(options.members as usize),
            index: HashMap::with_capacity(options.members as usize),
            groups: Vec::new(),
            agenda: BTreeMap::new(),
            clinic: options.clinic.clone(),
            writers: options.writers.max(1),
            seal: options.seal,
            follow_up_days: options.follow_up_days.clone(),
            rng: Rng(rng.next()),
        };
        for n in 0..treatment_groups + alumni_groups {
            sim.form_group(n, n >= treatment_groups);
        }
        sim
    }

    fn at(&self, day: u32, hour: u8, minute: u8) -> OffsetDateTime {
        self.start
            + Duration::days(i64::from(day))
            + Duration::hours(i64::from(hour))
            + Duration::minutes(i64::from(minute))
    }

    fn metadata(&mut self, actor: &str) -> Metadata {
        Metadata {
            actor: actor.to_owned(),
            correlation_id: self.rng.uuid(),
            causation_id: None,
            request: None,
        }
    }

    fn member_command(&mut self, m: usize, actor: &str, command: impl Into<MemberCommand>) -> bool {
        self.member_command_with(m, actor, command, Ids::Drawn)
    }

    fn member_command_with(
        &mut self,
        m: usize,
        actor: &str,
        command: impl Into<MemberCommand>,
        ids: Ids,
    ) -> bool {
        let Ok(events) = MemberDecider::decide(&self.members[m].state, command.into()) else {
            return false;
        };
        for (n, event) in events.into_iter().enumerate() {
            let (metadata, event_id) = match &ids {
                Ids::Drawn => (self.metadata(actor), self.rng.uuid()),
                Ids::Derived(what) => {
                    let member = self.members[m].id.as_uuid();
                    let derived =
                        |part: &str| Uuid::new_v5(&member, format!("{what}/{n}/{part}").as_bytes());
                    let metadata = Metadata {
                        actor: actor.to_owned(),
                        correlation_id: derived("correlation"),
                        causation_id: None,
                        request: None,
                    };
                    (metadata, derived("event"))
                }
            };
            let member = &mut self.members[m];
            member.state = std::mem::take(&mut member.state).evolve(&event);
            member.pending.events.push((event, event_id, metadata));
        }
        true
    }

    fn group_command(&mut self, g: usize, actor: &str, command: impl Into<GroupCommand>) -> bool {
        let Ok(events) = GroupDecider::decide(&self.groups[g].state, command.into()) else {
            return false;
        };
        for event in events {
            let metadata = self.metadata(actor);
            let event_id = self.rng.uuid();
            let group = &mut self.groups[g];
            group.state = std::mem::take(&mut group.state).evolve(&event);
            group.pending.events.push((event, event_id, metadata));
        }
        true
    }

    fn form_group(&mut self, n: u32, alumni: bool) {
        let id = GroupId::new(self.rng.uuid());
        let model = *self.rng.pick(GroupModel::ALL);
        let first = self.rng.between(0, 4);
        let weekdays = if self.rng.chance(0.5) {
            vec![first, first + 2]
        } else {
            vec![first % 2, first % 2 + 2, first % 2 + 4]
        };
        let name = if alumni {
            format!("Alumni circle {}", n + 1)
        } else {
            format!("{} {}", self.rng.pick(names::GROUP_NAMES), n + 1)
        };
        let facilitator = format!("facilitator-{}", n % 7 + 1);
        self.groups.push(SimGroup {
            id,
            state: GroupState::default(),
            pending: Pending::default(),
            weekdays,
            alumni,
        });
        let g = self.groups.len() - 1;
        let at = self.start - Duration::days(1);
        let online = self.rng.chance(0.2);
        self.group_command(
            g,
            "admin-demo",
            FormGroup {
                group: id,
                name: text("name", &name),
                model,
                facilitator: Some(text("facilitator", &facilitator)),
                capacity: Capacity::default(),
                schedule: Some(text("schedule", "weekly, 18:00-19:30")),
                alumni,
                online,
                at,
            },
        );
    }

    fn wake(&mut self, m: usize, day: u32) {
        self.agenda.entry(day).or_default().push(m);
    }

    fn simulate_day(&mut self, day: u32) {
        // Referrals arrive evenly over the period.
        let due = (u64::from(self.members_total) * u64::from(day + 1) / u64::from(self.days.max(1)))
            as usize;
        while self.members.len() < due {
            self.refer(day);
        }
        let mut woken = self.agenda.remove(&day).unwrap_or_default();
        woken.sort_unstable();
        woken.dedup();
        for m in woken {
            self.member_day(m, day);
        }
        for g in 0..self.groups.len() {
            if self.groups[g].weekdays.contains(&(day % 7)) {
                self.hold_session(g, day);
            }
        }
    }

    fn refer(&mut self, day: u32) {
        let id = MemberId::new(self.rng.uuid());
        let first = *self.rng.pick(names::FIRST_NAMES);
        let last = *self.rng.pick(names::LAST_NAMES);
        let Ok(name) = PersonName::parse(&format!("{first} {last}")) else {
            return;
        };
        let email = if self.rng.chance(0.75) {
            let n = self.rng.between(1, 999);
            Email::parse(&format!(
                "{}.{}{n}@example.org",
                first.to_lowercase(),
                last.to_lowercase()
            ))
            .ok()
        } else {
            None
        };
        let r = &mut self.rng;
        let intake_day = r.chance(0.9).then(|| day + r.between(1, 3));
        let admit_day = intake_day
            .filter(|_| r.chance(0.85))
            .map(|d| d + r.between(1, 4));
        let reason = match r.between(0, 99) {
            0..=64 => DischargeReason::Completed,
            65..=84 => DischargeReason::AgainstAdvice,
            85..=92 => DischargeReason::Transferred,
            _ => DischargeReason::Administrative,
        };
        let plan = Plan {
            intake_day,
            admit_day,
            stay_days: r.between(21, 60),
            step_down: r.chance(0.25),
            reason,
            alumni_after: r.chance(0.5).then(|| r.between(10, 40)),
            readmit_after: r.chance(0.08).then(|| r.between(30, 150)),
        };
        let engagement = 0.55 + 0.43 * r.unit();
        let counselor = format!("counselor-{}", r.between(1, 12));
        let source = *r.pick(ReferralSource::ALL);
        let minute = r.between(0, 59) as u8;
        self.members.push(SimMember {
            id,
            state: MemberState::default(),
            pending: Pending::default(),
            plan,
            engagement,
            counselor,
            groups: Vec::new(),
            admitted_day: 0,
            discharge_day: None,
            next_check_in_day: 0,
            open_check_in: None,
            readmitted: false,
        });
        let m = self.members.len() - 1;
        self.index.insert(id, m);
        let at = self.at(day, 9, minute);
        self.member_command(
            m,
            "intake-demo",
            ReferMember {
                member: id,
                name,
                email,
                phone: None,
                source,
                primary_substance: None,
                at,
            },
        );
        if let Some(d) = intake_day {
            self.wake(m, d);
        }
    }

    /// Whatever is due for member `m` on `day`; schedules their next wake-up.
    fn member_day(&mut self, m: usize, day: u32) {
        let stage = self.members[m].state.stage();
        let plan_intake = self.members[m].plan.intake_day;
        let plan_admit = self.members[m].plan.admit_day;
        match stage {
            Some(Stage::Referred) if plan_intake == Some(day) => {
                let level = *self.rng.pick(LevelOfCare::ALL);
                let at = self.at(day, 11, 0);
                self.member_command(
                    m,
                    "intake-demo",
                    CompleteIntake {
                        assessed_by: text("assessed by", "dr-demo"),
                        recommended_level: level,
                        at,
                    },
                );
            }
            Some(Stage::Intake) if plan_admit == Some(day) => self.admit(m, day, false),
            Some(Stage::InTreatment) => self.treatment_day(m, day),
            Some(Stage::Discharged | Stage::Aftercare | Stage::Alumni) => self.after_day(m, day),
            _ => {}
        }
        if let Some(next) = self.next_wake(m, day) {
            self.wake(m, next);
        }
    }

    fn admit(&mut self, m: usize, day: u32, readmission: bool) {
        let level = *self.rng.pick(&LevelOfCare::ALL[1..]);
        let counselor = text("counselor", &self.members[m].counselor.clone());
        let at = self.at(day, 10, 0);
        let admitted = if readmission {
            self.member_command(
                m,
                "clinician-demo",
                ReadmitMember {
                    level_of_care: level,
                    primary_counselor: Some(counselor),
                    at,
                },
            )
        } else {
            self.member_command(
                m,
                "clinician-demo",
                AdmitMember {
                    level_of_care: level,
                    primary_counselor: Some(counselor),
                    at,
                },
            )
        };
        if !admitted {
            return;
        }
        let stay = if readmission {
            self.rng.between(21, 45)
        } else {
            self.members[m].plan.stay_days
        };
        let member = &mut self.members[m];
        member.admitted_day = day;
        member.discharge_day = Some(day + stay);
        member.next_check_in_day = day + 1;
        if !readmission && self.rng.chance(0.6) {
            let consent = ConsentId::new(self.rng.uuid());
            self.member_command(
                m,
                "clinician-demo",
                GiveConsent::short_form(consent, ConsentScope::EmailOutreach, at),
            );
        }
        self.join_group(m, day, false);
    }

    fn join_group(&mut self, m: usize, day: u32, alumni: bool) {
        let member = self.members[m].id;
        let stage = self.members[m].state.group_eligibility();
        let candidates: Vec<usize> = (0..self.groups.len())
            .filter(|&g| self.groups[g].alumni == alumni && !self.groups[g].state.closed())
            .filter(|&g| self.groups[g].state.roster().len() < 11)
            .collect();
        if candidates.is_empty() {
            return;
        }
        let g = *self.rng.pick(&candidates);
        let at = self.at(day, 12, 0);
        if self.group_command(
            g,
            "clinician-demo",
            JoinGroup {
                member,
                member_stage: stage,
                at,
            },
        ) {
            self.members[m].groups.push(g);
        }
    }

    fn leave_groups(&mut self, m: usize, day: u32) {
        let member = self.members[m].id;
        let groups = std::mem::take(&mut self.members[m].groups);
        let at = self.at(day, 14, 0);
        for g in groups {
            self.group_command(
                g,
                "clinician-demo",
                LeaveGroup {
                    member,
                    reason: text("reason", "left the programme"),
                    at,
                },
            );
        }
    }

    fn treatment_day(&mut self, m: usize, day: u32) {
        // The check-in due today is completed or missed.
        if let Some((check_in, due_day)) = self.members[m].open_check_in {
            if due_day <= day {
                self.resolve_check_in(m, check_in, due_day);
            }
        }
        let member = &self.members[m];
        let discharge_day = member.discharge_day.unwrap_or(u32::MAX);
        if day >= discharge_day {
            self.discharge(m, day);
            return;
        }
        let midway = member.admitted_day + (discharge_day - member.admitted_day) / 2;
        if day == midway && member.plan.step_down && !member.readmitted {
            let from = member.state.level_of_care();
            if let Some(to) = from.and_then(|l| {
                LevelOfCare::ALL
                    .iter()
                    .copied()
                    .skip_while(|x| *x != l)
                    .nth(1)
            }) {
                let at = self.at(day, 16, 0);
                self.member_command(
                    m,
                    "clinician-demo",
                    ChangeLevelOfCare {
                        to,
                        reason: text("reason", "stepping down as planned"),
                        at,
                    },
                );
            }
        }
        let member = &self.members[m];
        if member.open_check_in.is_none() && day >= member.next_check_in_day {
            let check_in = CheckInId::new(self.rng.uuid());
            let channel = *self.rng.pick(CheckInChannel::ALL);
            let at = self.at(day, 10, 30);
            let due_at = self.at(day + 1, 10, 0);
            if self.member_command(
                m,
                "clinician-demo",
                ScheduleCheckIn {
                    check_in,
                    due_at,
                    channel,
                    at,
                },
            ) {
                self.members[m].open_check_in = Some((check_in, day + 1));
            }
        }
    }

    fn resolve_check_in(&mut self, m: usize, check_in: CheckInId, due_day: u32) {
        let due_at = self.at(due_day, 10, 0);
        let engagement = self.members[m].engagement;
        if self.rng.chance(engagement.min(0.92)) {
            let mood = Mood::new(i64::from(self.rng.between(2, 5)));
            let craving = Craving::new(i64::from(self.rng.between(0, 7)));
            if let (Ok(mood), Ok(craving)) = (mood, craving) {
                let used = self.rng.chance(0.1);
                self.member_command(
                    m,
                    "member-app",
                    CompleteCheckIn {
                        check_in,
                        mood,
                        craving,
                        used,
                        at: due_at - Duration::hours(1),
                    },
                );
            }
        } else {
            self.member_command(
                m,
                crate::scheduler::ACTOR,
                MarkCheckInMissed {
                    check_in,
                    now: due_at + Duration::minutes(1),
                },
            );
        }
        let gap = self.rng.between(2, 3);
        let member = &mut self.members[m];
        member.open_check_in = None;
        member.next_check_in_day = due_day + gap;
    }

    fn discharge(&mut self, m: usize, day: u32) {
        if let Some((check_in, due_day)) = self.members[m].open_check_in {
            self.resolve_check_in(m, check_in, due_day);
        }
        self.leave_groups(m, day);
        let reason = if self.members[m].readmitted {
            DischargeReason::Completed
        } else {
            self.members[m].plan.reason
        };
        let at = self.at(day, 15, 0);
        self.member_command(
            m,
            "clinician-demo",
            DischargeMember {
                reason,
                at,
                plan: AftercarePlan::AlumniGroup,
                follow_up_offsets_days: self.follow_up_days.clone(),
            },
        );
        self.members[m].discharge_day = Some(day);
    }

    fn after_day(&mut self, m: usize, day: u32) {
        let end_of_day = self.at(day + 1, 0, 0);
        // Follow-ups whose day has come are marked due (as the scheduler would), and most are
        // recorded a few days later.
        let falling_due: Vec<_> = self.members[m]
            .state
            .follow_ups()
            .iter()
            .filter(|f| f.status == FollowUpStatus::Planned && f.due_at < end_of_day)
            .map(|f| (f.id, f.due_at))
            .collect();
        for (follow_up, due_at) in falling_due {
            self.member_command(
                m,
                crate::scheduler::ACTOR,
                MarkFollowUpDue {
                    follow_up,
                    now: due_at + Duration::minutes(1),
                },
            );
        }
        let to_record: Vec<_> = self.members[m]
            .state
            .follow_ups()
            .iter()
            .filter(|f| {
                f.status == FollowUpStatus::Due && f.due_at + Duration::days(3) < end_of_day
            })
            .map(|f| f.id)
            .collect();
        for follow_up in to_record {
            if self.rng.chance(0.8) {
                let outcome = match self.rng.between(0, 99) {
                    0..=54 => FollowUpOutcome::Abstinent,
                    55..=69 => FollowUpOutcome::ReducedUse,
                    70..=81 => FollowUpOutcome::Relapsed,
                    82..=85 => FollowUpOutcome::Readmitted,
                    _ => FollowUpOutcome::Unreachable,
                };
                let at = self.at(day, 13, 0);
                self.member_command(
                    m,
                    "clinician-demo",
                    RecordFollowUp {
                        follow_up,
                        outcome,
                        at,
                    },
                );
            }
        }
        let member = &self.members[m];
        let discharged = member.discharge_day.unwrap_or(day);
        let since = day.saturating_sub(discharged);
        // One alumnus in eight with an address gives a new one soon after discharge: chosen by
        // id and recorded with ids derived from it, so the move draws nothing from the
        // generator and the rest of the simulation is the same with or without it.
        if since == ADDRESS_CHANGE_AFTER_DAYS && member.id.as_uuid().as_u128().is_multiple_of(8) {
            let new_address = member.state.email().and_then(|old| {
                let (local, _) = old.split_once('@')?;
                Email::parse(&format!("{local}@mail.example.org")).ok()
            });
            if let Some(address) = new_address {
                let at = self.at(day, 11, 0);
                self.member_command_with(
                    m,
                    "intake-demo",
                    ChangeMemberDetails {
                        name: None,
                        email: DetailChange::Set(address),
                        phone: DetailChange::Keep,
                        at,
                    },
                    Ids::Derived(format!("move/{day}")),
                );
            }
        }
        let member = &self.members[m];
        if member.state.stage() == Some(Stage::Aftercare) && member.plan.alumni_after == Some(since)
        {
            let at = self.at(day, 17, 0);
            if self.member_command(m, "clinician-demo", EnrollAlumni { at }) && self.rng.chance(0.5)
            {
                self.join_group(m, day, true);
            }
        }
        let member = &self.members[m];
        if !member.readmitted && member.plan.readmit_after == Some(since) {
            self.leave_groups(m, day);
            self.members[m].readmitted = true;
            self.admit(m, day, true);
        }
    }

    /// The next day something may happen to member `m`, if any.
    fn next_wake(&self, m: usize, day: u32) -> Option<u32> {
        let member = &self.members[m];
        let next = match member.state.stage()? {
            Stage::Referred => member.plan.intake_day.filter(|d| *d > day),
            Stage::Intake => member.plan.admit_day.filter(|d| *d > day),
            Stage::InTreatment => Some(day + 1),
            Stage::Discharged | Stage::Aftercare | Stage::Alumni => {
                let open = member
                    .state
                    .follow_ups()
                    .iter()
                    .any(|f| matches!(f.status, FollowUpStatus::Planned | FollowUpStatus::Due));
                let pending_plan = (!member.readmitted && member.plan.readmit_after.is_some())
                    || (member.state.stage() == Some(Stage::Aftercare)
                        && member.plan.alumni_after.is_some());
                (open || pending_plan).then_some(day + 1)
            }
        }?;
        (next < self.days).then_some(next)
    }

    fn hold_session(&mut self, g: usize, day: u32) {
        let roster: Vec<MemberId> = self.groups[g].state.roster().to_vec();
        if roster.is_empty() {
            return;
        }
        let session = SessionId::new(self.rng.uuid());
        let topic = text("topic", self.rng.pick::<&str>(names::TOPICS));
        let held_at = self.at(day, 18, 0);
        if self.rng.chance(0.2) {
            let at = self.at(day.saturating_sub(2), 9, 0);
            self.group_command(
                g,
                "facilitator-demo",
                ScheduleSession {
                    session,
                    starts_at: held_at,
                    topic: topic.clone(),
                    at,
                },
            );
            if self.rng.chance(0.05) {
                self.group_command(
                    g,
                    "facilitator-demo",
                    CancelSession {
                        session,
                        reason: text("reason", "facilitator unavailable"),
                        at: held_at - Duration::hours(3),
                    },
                );
                return;
            }
        }
        let mut attendance = Vec::with_capacity(roster.len());
        for member_id in roster {
            let engagement = self
                .index
                .get(&member_id)
                .map_or(0.8, |&m| self.members[m].engagement);
            let status = if self.rng.chance(engagement) {
                if self.rng.chance(0.1) {
                    AttendanceStatus::Late
                } else {
                    AttendanceStatus::Present
                }
            } else if self.rng.chance(0.25) {
                AttendanceStatus::Excused
            } else {
                AttendanceStatus::Absent
            };
            attendance.push(Attendance { member_id, status });
        }
        let corrected = attendance
            .iter()
            .find(|a| a.status == AttendanceStatus::Absent)
            .map(|a| a.member_id)
            .filter(|_| self.rng.chance(0.05));
        let duration = SessionMinutes::default();
        self.group_command(
            g,
            "facilitator-demo",
            RecordSession {
                session,
                planned: false,
                held_at,
                topic,
                duration,
                attendance,
            },
        );
        if let Some(member) = corrected {
            self.group_command(
                g,
                "facilitator-demo",
                CorrectAttendance {
                    session,
                    member,
                    to: AttendanceStatus::Excused,
                    reason: text("reason", "called ahead; recorded late"),
                    at: held_at + Duration::hours(20),
                },
            );
        }
    }

    /// Appends every buffered event, one append per stream, a few streams at a time.
    async fn flush(&mut self, store: &EventStore, keyring: &Keyring) -> Result<u64, SeedError> {
        let clinic = self.clinic.clone();
        let mut batches: Vec<(StreamId, u64, Vec<NewEvent>)> = Vec::new();
        let keyring = self.seal.then_some(keyring);
        for member in &mut self.members {
            let stream = StreamId::of("member", member.id.as_uuid());
            take_batch(&mut batches, keyring, &clinic, stream, &mut member.pending).await?;
        }
        for group in &mut self.groups {
            let stream = StreamId::of("group", group.id.as_uuid());
            take_batch(&mut batches, keyring, &clinic, stream, &mut group.pending).await?;
        }
        let count: u64 = batches.iter().map(|(_, _, e)| e.len() as u64).sum();
        futures::stream::iter(batches.into_iter().map(Ok))
            .try_for_each_concurrent(self.writers, |(stream, mut version, events)| {
                let clinic = clinic.clone();
                async move {
                    for chunk in events.chunks(EventStore::MAX_BATCH) {
                        let expected = match version {
                            0 => ExpectedVersion::NoStream,
                            n => ExpectedVersion::Exactly(n),
                        };
                        store.append(&clinic, &stream, expected, chunk).await?;
                        version += chunk.len() as u64;
                    }
                    Ok::<(), EventStoreError>(())
                }
            })
            .await?;
        Ok(count)
    }
}

/// Moves a stream's buffered events, sealed (unless no keyring is given), into `batches` (to
/// append after its stored version).
async fn take_batch<E: StoredEvent>(
    batches: &mut Vec<(StreamId, u64, Vec<NewEvent>)>,
    keyring: Option<&Keyring>,
    clinic: &ClinicId,
    stream: StreamId,
    pending: &mut Pending<E>,
) -> Result<(), CodecError> {
    if pending.events.is_empty() {
        return Ok(());
    }
    let mut events = Vec::with_capacity(pending.events.len());
    for (event, event_id, metadata) in std::mem::take(&mut pending.events) {
        events.push(match keyring {
            Some(keyring) => {
                codec::encode(keyring, clinic, &stream, &event, event_id, metadata).await?
            }
            None => codec::encode_unsealed(&event, event_id, metadata),
        });
    }
    let stored = pending.stored_version;
    pending.stored_version += events.len() as u64;
    batches.push((stream, stored, events));
    Ok(())
}
