//! What a member's past events mean now: the fold that `decide` reads.

use time::OffsetDateTime;

use crate::consent::Consent;
use crate::ids::{CheckInId, ConsentId, DisclosureId, FollowUpId, GoalId, MemberId};
use crate::values::{
    CheckInChannel, CheckInStatus, ConsentScope, DischargeReason, FollowUpOutcome, FollowUpStatus,
    LevelOfCare, Stage,
};

use super::event::MemberEvent;
use super::identity::{Identity, Naming};

/// A scheduled check-in and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckIn {
    /// The check-in.
    pub id: CheckInId,
    /// When it is due.
    pub due_at: OffsetDateTime,
    /// How it is to be made.
    pub channel: CheckInChannel,
    /// Scheduled, completed or missed.
    pub status: CheckInStatus,
    /// Still scheduled when the member was discharged: the discharge closed it, so it
    /// can be neither completed nor missed (its status stays `scheduled`).
    pub closed_by_discharge: bool,
}

/// A planned alumni follow-up and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// The follow-up.
    pub id: FollowUpId,
    /// Days after discharge.
    pub day_offset: u16,
    /// When it falls due.
    pub due_at: OffsetDateTime,
    /// Planned, due or completed.
    pub status: FollowUpStatus,
    /// The outcome, once completed.
    pub outcome: Option<FollowUpOutcome>,
}

/// A treatment-plan goal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goal {
    /// The goal.
    pub id: GoalId,
    /// The goal in words (emptied when the member is erased).
    pub text: String,
    /// When it was achieved, if it was.
    pub achieved_at: Option<OffsetDateTime>,
}

/// The member as their events describe them: one stage at a time, the current
/// treatment episode, consents, goals, check-ins and follow-ups.
///
/// Only [`MemberState::evolve`] changes it, so its fields are private.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberState {
    version: u64,
    member: Option<MemberId>,
    referred_at: Option<OffsetDateTime>,
    intake_completed_at: Option<OffsetDateTime>,
    stage: Option<Stage>,
    level_of_care: Option<LevelOfCare>,
    recommended_level: Option<LevelOfCare>,
    primary_counselor: Option<String>,
    episodes: u32,
    admitted_at: Option<OffsetDateTime>,
    /// Since when the member has been at their current level of care: the episode's
    /// admission, or its last change of level.
    level_since: Option<OffsetDateTime>,
    last_discharge: Option<(DischargeReason, OffsetDateTime)>,
    /// Every discharge's time, in the order recorded (consents until the end of treatment).
    discharges: Vec<OffsetDateTime>,
    consents: Vec<Consent>,
    goals: Vec<Goal>,
    check_ins: Vec<CheckIn>,
    consecutive_missed_check_ins: u32,
    follow_ups: Vec<FollowUp>,
    disclosures: Vec<DisclosureId>,
    last_disclosed_at: Option<OffsetDateTime>,
    erased: bool,
    /// How the member was known: at referral, then after each change of details, the current
    /// last. The former ones are kept for the texts that must not identify the member (an
    /// erasure's reason outlives their data key, and an old name identifies them as well).
    identities: Vec<Identity>,
}

impl MemberState {
    /// Folds events from the start of the stream.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a MemberEvent>) -> Self {
        events.into_iter().fold(Self::default(), Self::evolve)
    }

    /// Applies one event. Total: an event that refers to something unknown changes
    /// only the version (decide never produces one; old data must still load).
    #[must_use]
    pub fn evolve(mut self, event: &MemberEvent) -> Self {
        self.version += 1;
        match event {
            MemberEvent::MemberReferred(e) => {
                self.member = Some(e.member_id);
                self.identities = vec![Identity {
                    name: e.name.clone(),
                    email: e.email.clone(),
                    phone: e.phone.clone(),
                }];
                self.referred_at = Some(e.referred_at);
                self.stage = Some(Stage::Referred);
            }
            MemberEvent::IntakeCompleted(e) => {
                self.stage = Some(Stage::Intake);
                self.intake_completed_at = Some(e.completed_at);
                self.recommended_level = Some(e.recommended_level);
            }
            MemberEvent::MemberAdmitted(e) => {
                self.stage = Some(Stage::InTreatment);
                self.level_of_care = Some(e.level_of_care);
                self.primary_counselor.clone_from(&e.primary_counselor);
                self.episodes = self.episodes.saturating_add(1);
                self.admitted_at = Some(e.admitted_at);
                self.level_since = Some(e.admitted_at);
            }
            MemberEvent::LevelOfCareChanged(e) => {
                self.level_of_care = Some(e.to);
                self.level_since = Some(e.changed_at);
            }
            MemberEvent::ConsentGiven(e) => {
                // A consent entered after a discharge it was signed before ends there too.
                let mut consent = Consent::given(e);
                for discharged_at in &self.discharges {
                    consent.treatment_ended(*discharged_at);
                }
                self.consents.push(consent);
            }
            MemberEvent::ConsentRevoked(e) => {
                // The earliest revocation on record counts: a revocation of the whole scope may
                // be received (and recorded) after a later-dated one of this consent.
                if let Some(c) = self.consents.iter_mut().find(|c| c.id == e.consent_id) {
                    c.revoked_at = Some(
                        c.revoked_at
                            .map_or(e.received_at, |earlier| earlier.min(e.received_at)),
                    );
                }
            }
            MemberEvent::GoalSet(e) => self.goals.push(Goal {
                id: e.goal_id,
                text: e.text.clone(),
                achieved_at: None,
            }),
            MemberEvent::GoalAchieved(e) => {
                if let Some(g) = self.goals.iter_mut().find(|g| g.id == e.goal_id) {
                    g.achieved_at = Some(e.achieved_at);
                }
            }
            MemberEvent::CheckInScheduled(e) => self.check_ins.push(CheckIn {
                id: e.check_in_id,
                due_at: e.due_at,
                channel: e.channel,
                status: CheckInStatus::Scheduled,
                closed_by_discharge: false,
            }),
            MemberEvent::CheckInCompleted(e) => {
                self.set_check_in(e.check_in_id, CheckInStatus::Completed);
                self.consecutive_missed_check_ins = 0;
            }
            MemberEvent::CheckInMissed(e) => {
                self.set_check_in(e.check_in_id, CheckInStatus::Missed);
                self.consecutive_missed_check_ins =
                    self.consecutive_missed_check_ins.saturating_add(1);
            }
            MemberEvent::MemberDischarged(e) => {
                self.stage = Some(Stage::Discharged);
                self.level_of_care = None;
                self.last_discharge = Some((e.reason, e.discharged_at));
                self.discharges.push(e.discharged_at);
                for consent in &mut self.consents {
                    consent.treatment_ended(e.discharged_at);
                }
                // Discharge ends the episode's check-ins: those still open are closed
                // (no outreach for someone no longer in treatment) and the run of
                // missed ones starts again.
                for c in &mut self.check_ins {
                    if c.status == CheckInStatus::Scheduled {
                        c.closed_by_discharge = true;
                    }
                }
                self.consecutive_missed_check_ins = 0;
            }
            MemberEvent::AftercareStarted(e) => {
                self.stage = Some(Stage::Aftercare);
                self.follow_ups
                    .extend(e.follow_ups.iter().map(|f| FollowUp {
                        id: f.follow_up_id,
                        day_offset: f.day_offset,
                        due_at: f.due_at,
                        status: FollowUpStatus::Planned,
                        outcome: None,
                    }));
            }
            MemberEvent::FollowUpDue(e) => {
                if let Some(f) = self.follow_up_mut(e.follow_up_id) {
                    f.status = FollowUpStatus::Due;
                }
            }
            MemberEvent::FollowUpCompleted(e) => {
                if let Some(f) = self.follow_up_mut(e.follow_up_id) {
                    f.status = FollowUpStatus::Completed;
                    f.outcome = Some(e.outcome);
                }
            }
            MemberEvent::AlumniEnrolled(_) => self.stage = Some(Stage::Alumni),
            MemberEvent::MemberReadmitted(e) => {
                self.stage = Some(Stage::InTreatment);
                self.level_of_care = Some(e.level_of_care);
                self.primary_counselor.clone_from(&e.primary_counselor);
                self.episodes = self.episodes.saturating_add(1);
                self.admitted_at = Some(e.readmitted_at);
                self.level_since = Some(e.readmitted_at);
                // A new episode starts a new run of missed check-ins.
                self.consecutive_missed_check_ins = 0;
                // Back in treatment, the member is no alumnus to follow up: the previous
                // episode's follow-ups still planned are dropped (due ones stay on the list
                // until an outcome is recorded). A readmission decides an outcome or a due
                // mark for each before this event; only older logs have any left here.
                self.follow_ups
                    .retain(|f| f.status != FollowUpStatus::Planned);
            }
            MemberEvent::DisclosureMade(e) => {
                self.disclosures.push(e.disclosure_id);
                self.last_disclosed_at = self.last_disclosed_at.max(Some(e.disclosed_at));
            }
            MemberEvent::MemberDetailsChanged(e) => self.identities.push(Identity {
                name: e.name.clone(),
                email: e.email.clone(),
                phone: e.phone.clone(),
            }),
            MemberEvent::MemberErased(_) => {
                self.erased = true;
                self.identities.clear();
                self.primary_counselor = None;
                for c in &mut self.consents {
                    c.recipient.clear();
                    c.purpose.clear();
                    c.information.clear();
                    c.signed_by.clear();
                    c.expires_on = None;
                }
                for g in &mut self.goals {
                    g.text.clear();
                }
            }
        }
        self
    }

    fn set_check_in(&mut self, id: CheckInId, status: CheckInStatus) {
        if let Some(c) = self.check_ins.iter_mut().find(|c| c.id == id) {
            c.status = status;
        }
    }

    fn follow_up_mut(&mut self, id: FollowUpId) -> Option<&mut FollowUp> {
        self.follow_ups.iter_mut().find(|f| f.id == id)
    }

    /// How many events were folded: the stream's current version (0 for an empty
    /// stream), the expected version for the next append.
    pub const fn version(&self) -> u64 {
        self.version
    }

    /// The member, once referred.
    pub const fn member(&self) -> Option<MemberId> {
        self.member
    }

    /// When the referral arrived.
    pub const fn referred_at(&self) -> Option<OffsetDateTime> {
        self.referred_at
    }

    /// When the intake assessment was completed.
    pub const fn intake_completed_at(&self) -> Option<OffsetDateTime> {
        self.intake_completed_at
    }

    /// The pipeline stage; `None` for an empty stream.
    pub const fn stage(&self) -> Option<Stage> {
        self.stage
    }

    /// The current level of care, while in treatment.
    pub const fn level_of_care(&self) -> Option<LevelOfCare> {
        self.level_of_care
    }

    /// The level of care recommended at intake.
    pub const fn recommended_level(&self) -> Option<LevelOfCare> {
        self.recommended_level
    }

    /// The primary counselor of the current (or last) episode, who gets outreach items.
    pub fn primary_counselor(&self) -> Option<&str> {
        self.primary_counselor.as_deref()
    }

    /// How many treatment episodes (admissions and readmissions) there have been.
    pub const fn episodes(&self) -> u32 {
        self.episodes
    }

    /// When the current (or last) episode began.
    pub const fn admitted_at(&self) -> Option<OffsetDateTime> {
        self.admitted_at
    }

    /// Since when the member has been at their current level of care (the episode's
    /// admission or its last change): what a later step of the episode may not predate.
    pub const fn level_since(&self) -> Option<OffsetDateTime> {
        self.level_since
    }

    /// The reason and time of the last discharge, if any.
    pub const fn last_discharge(&self) -> Option<(DischargeReason, OffsetDateTime)> {
        self.last_discharge
    }

    /// Every consent given, in the order given.
    pub fn consents(&self) -> &[Consent] {
        &self.consents
    }

    /// A consent by id.
    pub fn consent(&self, id: ConsentId) -> Option<&Consent> {
        self.consents.iter().find(|c| c.id == id)
    }

    /// The most recent consent of `scope` in force at `at`: the one an outgoing email
    /// records as its authority; `None` means the email must not be sent.
    pub fn consent_in_force(&self, scope: ConsentScope, at: OffsetDateTime) -> Option<&Consent> {
        self.consents
            .iter()
            .rev()
            .find(|c| c.scope == scope && c.in_force_at(at))
    }

    /// The consent of `scope` an automatic email may rely on at `at`: in force, not revoked,
    /// and ending only in ways the record shows ([`Consent::end_is_on_record`]); of several,
    /// the one that lasts longest (no end date first, then the latest end date; then the most
    /// recent), so an email recorded under it is not cancelled when a shorter one lapses while
    /// another still allows it. `None` means the email must not be sent.
    ///
    /// A revocation on record stops outreach whatever receipt time it carries: one dated ahead
    /// (a clock or a hand running fast) must not leave a window in which the member, who has
    /// said no, is still written to.
    pub fn consent_for_outreach(
        &self,
        scope: ConsentScope,
        at: OffsetDateTime,
    ) -> Option<&Consent> {
        self.consents
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.scope == scope
                    && c.revoked_at.is_none()
                    && c.in_force_at(at)
                    && c.end_is_on_record()
            })
            .max_by_key(|&(given, c)| (c.expires_at.is_none(), c.expires_at, given))
            .map(|(_, c)| c)
    }

    /// Treatment-plan goals, in the order set.
    pub fn goals(&self) -> &[Goal] {
        &self.goals
    }

    /// Check-ins, in the order scheduled.
    pub fn check_ins(&self) -> &[CheckIn] {
        &self.check_ins
    }

    /// Check-ins still scheduled (and not closed by a discharge) whose due time is at or
    /// before `now`: what the scheduler marks missed.
    pub fn overdue_check_ins(&self, now: OffsetDateTime) -> Vec<CheckInId> {
        self.check_ins
            .iter()
            .filter(|c| {
                c.status == CheckInStatus::Scheduled && !c.closed_by_discharge && c.due_at <= now
            })
            .map(|c| c.id)
            .collect()
    }

    /// Missed check-ins since the last completed one, in the order recorded; a discharge
    /// or a readmission starts the run again.
    pub const fn consecutive_missed_check_ins(&self) -> u32 {
        self.consecutive_missed_check_ins
    }

    /// Follow-ups of every aftercare episode, in schedule order.
    pub fn follow_ups(&self) -> &[FollowUp] {
        &self.follow_ups
    }

    /// Planned follow-ups whose day has come by `now`: what the scheduler marks due.
    pub fn follow_ups_falling_due(&self, now: OffsetDateTime) -> Vec<FollowUpId> {
        self.follow_ups
            .iter()
            .filter(|f| f.status == FollowUpStatus::Planned && f.due_at <= now)
            .map(|f| f.id)
            .collect()
    }

    /// Disclosures recorded, in order.
    pub fn disclosures(&self) -> &[DisclosureId] {
        &self.disclosures
    }

    /// When the member's records were last disclosed, if ever (their accounting is kept for
    /// the retention period from then).
    pub const fn last_disclosed_at(&self) -> Option<OffsetDateTime> {
        self.last_disclosed_at
    }

    /// Whether the member's personal data was erased.
    pub const fn erased(&self) -> bool {
        self.erased
    }

    /// The member's name now, unless erased.
    pub fn name(&self) -> Option<&str> {
        self.identities.last().map(|i| i.name.as_str())
    }

    /// The member's email address now, if they have one and are not erased.
    pub fn email(&self) -> Option<&str> {
        self.identities.last()?.email.as_deref()
    }

    /// The member's phone number now, if they have one and are not erased.
    pub fn phone(&self) -> Option<&str> {
        self.identities.last()?.phone.as_deref()
    }

    /// What in `text` names the member as they are or were known (a word of a name, an email
    /// address, a phone number), if anything.
    pub(crate) fn named_in(&self, text: &str) -> Option<Naming> {
        self.identities.iter().find_map(|i| i.named_in(text))
    }

    /// The fact a group needs to decide a join: the member's stage, or `None` when the
    /// member is unknown or erased (and so may join nothing).
    pub const fn group_eligibility(&self) -> Option<Stage> {
        if self.erased {
            None
        } else {
            self.stage
        }
    }
}
