//! What each member event changes in the member read models: a pure fold over the rows a
//! page touches, mirroring [`clinic_domain::MemberState::evolve`].

use std::collections::{BTreeMap, BTreeSet};

use clinic_domain::values::{
    CheckInChannel, CheckInStatus, FollowUpOutcome, FollowUpStatus, LevelOfCare, Stage,
};
use clinic_domain::{CheckInId, FollowUpId, MemberEvent, MemberId};
use time::OffsetDateTime;

use super::MemberEnvelope;
use crate::projections::{ProjectionError, Table};

/// The name an erased member's summary shows instead of theirs.
pub const ERASED_NAME: &str = crate::codec::ERASED;

/// A `member_summaries` row (its key is the clinic and member id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// The member's name, or [`ERASED_NAME`].
    pub name: String,
    /// The member's email, if given and not erased.
    pub email: Option<String>,
    /// The pipeline stage.
    pub stage: Stage,
    /// The level of care while in treatment.
    pub level_of_care: Option<LevelOfCare>,
    /// The primary counselor of the current (or last) episode.
    pub primary_counselor: Option<String>,
    /// The member stream's version.
    pub version: i64,
    /// Missed check-ins since the last completed one.
    pub consecutive_missed_check_ins: i32,
    /// When the last missed check-in was due.
    pub last_missed_due_at: Option<OffsetDateTime>,
    /// Whether the member's personal data was erased.
    pub erased: bool,
    /// When the referral arrived.
    pub referred_at: OffsetDateTime,
    /// The log position of the referral: the member list's order.
    pub referred_position: i64,
    /// When the last event was recorded.
    pub updated_at: OffsetDateTime,
}

/// A `member_check_ins` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckInRow {
    /// Whose check-in.
    pub member_id: MemberId,
    /// When it is due.
    pub due_at: OffsetDateTime,
    /// How it is to be made.
    pub channel: CheckInChannel,
    /// Scheduled, completed or missed.
    pub status: CheckInStatus,
    /// When the member checked in.
    pub completed_at: Option<OffsetDateTime>,
    /// Still scheduled when the member was discharged: the episode it belonged to ended, so
    /// nobody marks it missed (the domain's `CheckIn::closed_by_discharge`).
    pub closed_by_discharge: bool,
}

/// A `member_follow_ups` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUpRow {
    /// Whose follow-up.
    pub member_id: MemberId,
    /// Days after discharge.
    pub day_offset: i32,
    /// When it falls due.
    pub due_at: OffsetDateTime,
    /// Planned, due or completed.
    pub status: FollowUpStatus,
    /// What it found, once completed.
    pub outcome: Option<FollowUpOutcome>,
    /// When the outcome was recorded.
    pub completed_at: Option<OffsetDateTime>,
}

/// A clinic and an id: the key of every read-model row.
pub type Key<Id> = (String, Id);

/// The pipeline board's counter key: clinic, stage, level of care (in treatment only).
pub type CountKey = (String, Stage, Option<LevelOfCare>);

/// The member read-model rows one page reads and writes, and its pipeline counter deltas.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberRows {
    /// `member_summaries`.
    pub members: Table<Key<MemberId>, MemberRow>,
    /// `member_check_ins`.
    pub check_ins: Table<Key<CheckInId>, CheckInRow>,
    /// `member_follow_ups`.
    pub follow_ups: Table<Key<FollowUpId>, FollowUpRow>,
    /// Changes to `pipeline_counts`.
    pub pipeline: BTreeMap<CountKey, i64>,
}

/// The keys a page's events read: what to load before folding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberKeys {
    /// Members whose summary the page changes.
    pub members: BTreeSet<Key<MemberId>>,
    /// Check-ins completed or missed.
    pub check_ins: BTreeSet<Key<CheckInId>>,
    /// Members discharged: their check-ins still scheduled are needed (a discharge closes them).
    pub check_ins_of: BTreeSet<Key<MemberId>>,
    /// Follow-ups falling due or completed.
    pub follow_ups: BTreeSet<Key<FollowUpId>>,
    /// Members readmitted: every follow-up of theirs is needed.
    pub follow_ups_of: BTreeSet<Key<MemberId>>,
}

impl MemberKeys {
    /// The keys `events` read. A row the page itself creates before reading it (a member
    /// referred, a check-in scheduled, follow-ups planned earlier in the page) needs no load.
    pub fn of(events: &[MemberEnvelope]) -> Self {
        let mut keys = Self::default();
        let mut referred = BTreeSet::new();
        let mut scheduled = BTreeSet::new();
        let mut planned = BTreeSet::new();
        for e in events {
            let clinic = || e.clinic.clone();
            match &e.event {
                MemberEvent::MemberReferred(_) => {
                    if !keys.members.contains(&(clinic(), e.id)) {
                        referred.insert((clinic(), e.id));
                    }
                }
                _ if referred.contains(&(clinic(), e.id)) => {}
                _ => {
                    keys.members.insert((clinic(), e.id));
                }
            }
            match &e.event {
                MemberEvent::CheckInScheduled(c) => {
                    scheduled.insert((clinic(), c.check_in_id));
                }
                MemberEvent::CheckInCompleted(c)
                    if !scheduled.contains(&(clinic(), c.check_in_id)) =>
                {
                    keys.check_ins.insert((clinic(), c.check_in_id));
                }
                MemberEvent::CheckInMissed(c)
                    if !scheduled.contains(&(clinic(), c.check_in_id)) =>
                {
                    keys.check_ins.insert((clinic(), c.check_in_id));
                }
                MemberEvent::AftercareStarted(a) => {
                    planned.extend(a.follow_ups.iter().map(|f| (clinic(), f.follow_up_id)));
                }
                MemberEvent::FollowUpDue(f) if !planned.contains(&(clinic(), f.follow_up_id)) => {
                    keys.follow_ups.insert((clinic(), f.follow_up_id));
                }
                MemberEvent::FollowUpCompleted(f)
                    if !planned.contains(&(clinic(), f.follow_up_id)) =>
                {
                    keys.follow_ups.insert((clinic(), f.follow_up_id));
                }
                MemberEvent::MemberDischarged(_) => {
                    keys.check_ins_of.insert((clinic(), e.id));
                }
                MemberEvent::MemberReadmitted(_) => {
                    keys.follow_ups_of.insert((clinic(), e.id));
                }
                _ => {}
            }
        }
        keys
    }
}

impl MemberRows {
    /// Applies one member event to the rows.
    ///
    /// Total like the domain's `evolve`: a check-in or follow-up the member does not have is
    /// ignored. Only an event of a member without a summary (a stream whose first event is
    /// not a referral) is an error: the log and this fold disagree.
    pub fn apply(&mut self, e: &MemberEnvelope) -> Result<(), ProjectionError> {
        let key = (e.clinic.clone(), e.id);
        if let MemberEvent::MemberReferred(r) = &e.event {
            if self.members.get(&key).is_none() {
                self.count(&e.clinic, Stage::Referred, None, 1);
                self.members.put(
                    key,
                    MemberRow {
                        name: r.name.clone(),
                        email: r.email.clone(),
                        stage: Stage::Referred,
                        level_of_care: None,
                        primary_counselor: None,
                        version: e.version,
                        consecutive_missed_check_ins: 0,
                        last_missed_due_at: None,
                        erased: false,
                        referred_at: r.referred_at,
                        referred_position: e.position,
                        updated_at: e.recorded_at,
                    },
                );
                return Ok(());
            }
        }
        let Some(row) = self.members.get_mut(&key) else {
            return Err(ProjectionError::MissingRow {
                position: e.position,
                entity: "member",
            });
        };
        let before = (row.stage, row.level_of_care);
        row.version = e.version;
        row.updated_at = e.recorded_at;
        match &e.event {
            MemberEvent::MemberReferred(_)
            | MemberEvent::ConsentGiven(_)
            | MemberEvent::ConsentRevoked(_)
            | MemberEvent::GoalSet(_)
            | MemberEvent::GoalAchieved(_)
            | MemberEvent::DisclosureMade(_) => {}
            MemberEvent::MemberDetailsChanged(c) if !row.erased => {
                row.name.clone_from(&c.name);
                row.email.clone_from(&c.email);
            }
            MemberEvent::MemberDetailsChanged(_) => {}
            MemberEvent::IntakeCompleted(_) => row.stage = Stage::Intake,
            MemberEvent::MemberAdmitted(a) => {
                row.stage = Stage::InTreatment;
                row.level_of_care = Some(a.level_of_care);
                row.primary_counselor.clone_from(&a.primary_counselor);
            }
            MemberEvent::LevelOfCareChanged(c) => row.level_of_care = Some(c.to),
            MemberEvent::CheckInScheduled(s) => {
                self.check_ins.put(
                    (e.clinic.clone(), s.check_in_id),
                    CheckInRow {
                        member_id: e.id,
                        due_at: s.due_at,
                        channel: s.channel,
                        status: CheckInStatus::Scheduled,
                        completed_at: None,
                        closed_by_discharge: false,
                    },
                );
            }
            MemberEvent::CheckInCompleted(c) => {
                row.consecutive_missed_check_ins = 0;
                if let Some(check_in) = self.check_ins.get_mut(&(e.clinic.clone(), c.check_in_id)) {
                    check_in.status = CheckInStatus::Completed;
                    check_in.completed_at = Some(c.completed_at);
                }
            }
            MemberEvent::CheckInMissed(m) => {
                row.consecutive_missed_check_ins += 1;
                row.last_missed_due_at = Some(m.due_at);
                if let Some(check_in) = self.check_ins.get_mut(&(e.clinic.clone(), m.check_in_id)) {
                    check_in.status = CheckInStatus::Missed;
                }
            }
            MemberEvent::MemberDischarged(_) => {
                row.stage = Stage::Discharged;
                row.level_of_care = None;
                // As the domain does: discharge ends the episode's check-ins (those still
                // scheduled close) and the run of missed ones starts again.
                row.consecutive_missed_check_ins = 0;
                let open: Vec<_> = self
                    .check_ins
                    .iter()
                    .filter(|(k, c)| {
                        k.0 == e.clinic
                            && c.member_id == e.id
                            && c.status == CheckInStatus::Scheduled
                            && !c.closed_by_discharge
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in &open {
                    if let Some(check_in) = self.check_ins.get_mut(key) {
                        check_in.closed_by_discharge = true;
                    }
                }
            }
            MemberEvent::AftercareStarted(a) => {
                row.stage = Stage::Aftercare;
                for planned in &a.follow_ups {
                    self.follow_ups.put(
                        (e.clinic.clone(), planned.follow_up_id),
                        FollowUpRow {
                            member_id: e.id,
                            day_offset: i32::from(planned.day_offset),
                            due_at: planned.due_at,
                            status: FollowUpStatus::Planned,
                            outcome: None,
                            completed_at: None,
                        },
                    );
                }
            }
            MemberEvent::FollowUpDue(f) => {
                if let Some(follow_up) =
                    self.follow_ups.get_mut(&(e.clinic.clone(), f.follow_up_id))
                {
                    follow_up.status = FollowUpStatus::Due;
                }
            }
            MemberEvent::FollowUpCompleted(f) => {
                if let Some(follow_up) =
                    self.follow_ups.get_mut(&(e.clinic.clone(), f.follow_up_id))
                {
                    follow_up.status = FollowUpStatus::Completed;
                    follow_up.outcome = Some(f.outcome);
                    follow_up.completed_at = Some(f.completed_at);
                }
            }
            MemberEvent::AlumniEnrolled(_) => row.stage = Stage::Alumni,
            MemberEvent::MemberReadmitted(r) => {
                row.stage = Stage::InTreatment;
                row.level_of_care = Some(r.level_of_care);
                row.primary_counselor.clone_from(&r.primary_counselor);
                // A new episode starts a new run of missed check-ins.
                row.consecutive_missed_check_ins = 0;
                // As the domain does: the previous episode's follow-ups still planned are
                // dropped (due ones stay listed until an outcome is recorded). Readmissions
                // decide an outcome or a due mark for each first: only older logs have any.
                let dropped: Vec<_> = self
                    .follow_ups
                    .iter()
                    .filter(|(k, f)| {
                        k.0 == e.clinic
                            && f.member_id == e.id
                            && f.status == FollowUpStatus::Planned
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in &dropped {
                    self.follow_ups.delete(key);
                }
            }
            MemberEvent::MemberErased(_) => {
                row.erased = true;
                ERASED_NAME.clone_into(&mut row.name);
                row.email = None;
                row.primary_counselor = None;
            }
        }
        let Some(row) = self.members.get(&key) else {
            return Ok(());
        };
        let after = (row.stage, row.level_of_care);
        if before != after {
            self.count(&e.clinic, before.0, before.1, -1);
            self.count(&e.clinic, after.0, after.1, 1);
        }
        Ok(())
    }

    fn count(&mut self, clinic: &str, stage: Stage, level: Option<LevelOfCare>, delta: i64) {
        // The board counts levels of care among members in treatment only.
        let level = level.filter(|_| stage == Stage::InTreatment);
        *self
            .pipeline
            .entry((clinic.to_owned(), stage, level))
            .or_insert(0) += delta;
    }
}
