//! Why a member command was refused: each variant names the state that forbids it.

use thiserror::Error;
use time::OffsetDateTime;

use crate::decider::ErrorKind;
use crate::ids::{CheckInId, ConsentId, DisclosureId, FollowUpId, GoalId, MemberId};
use crate::values::{ConsentScope, LevelOfCare, Stage, ValueError};

/// A refused member command.
///
/// Messages carry ids, never names or clinical facts: a `Display` can reach a log, so
/// the member's stage, level of care, consent scopes and the dates of their treatment
/// (admission, discharge, due dates that reveal them) stay in the variant's fields for
/// the API to use, and out of the message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MemberError {
    /// An input value is invalid.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// The stream is empty: nobody was referred under this id.
    #[error("no member has been referred under this id")]
    UnknownMember,
    /// A referral arrived for a stream that already has one.
    #[error("member {member} has already been referred")]
    AlreadyReferred {
        /// The member.
        member: MemberId,
    },
    /// The command does not fit the member's pipeline stage.
    #[error("{command}: this command does not fit the member's current stage")]
    WrongStage {
        /// What was asked, in words.
        command: &'static str,
        /// The stage that forbids it.
        stage: Stage,
    },
    /// The member's record was erased; nothing more may be recorded.
    #[error("member {member} has been erased")]
    Erased {
        /// The member.
        member: MemberId,
    },
    /// A change of level of care to the level the member is already at.
    #[error("the member is already at the level of care asked for")]
    SameLevelOfCare {
        /// The current level.
        level: LevelOfCare,
    },
    /// The intake assessment is dated before the referral.
    #[error("an intake assessment cannot be dated before the member's referral")]
    IntakeBeforeReferral {
        /// When the member was referred.
        referred_at: OffsetDateTime,
    },
    /// The admission is dated before the intake assessment it rests on.
    #[error("an admission cannot be dated before the member's intake assessment")]
    AdmissionBeforeIntake {
        /// When the intake assessment was completed.
        intake_completed_at: OffsetDateTime,
    },
    /// A change of level of care is dated before the current episode's admission.
    #[error("a change of level of care cannot be dated before the member's admission")]
    LevelChangeBeforeAdmission {
        /// When the current episode began.
        admitted_at: OffsetDateTime,
    },
    /// A change of level of care or a discharge is dated before the episode's last change of
    /// level: the record would say the member moved after they had left, or moved back in time.
    #[error("{command} cannot be dated before the member's last change of level of care")]
    BeforeLevelChange {
        /// What was refused.
        command: &'static str,
        /// When the current level of care began.
        level_since: OffsetDateTime,
    },
    /// A check-in is due before the episode's admission: no check-in of this episode can have
    /// been due then (a mistyped year would be marked missed at once, and two of them would
    /// open outreach).
    #[error("a check-in cannot be due before the member's admission")]
    CheckInBeforeAdmission {
        /// When the current episode began.
        admitted_at: OffsetDateTime,
    },
    /// A readmission is dated before the last discharge.
    #[error("a readmission cannot be dated before the member's last discharge")]
    ReadmissionBeforeDischarge {
        /// When the member was last discharged.
        discharged_at: OffsetDateTime,
    },
    /// The discharge time is before the admission time.
    #[error("a discharge cannot be dated before the member's admission")]
    DischargeBeforeAdmission {
        /// When the current episode began.
        admitted_at: OffsetDateTime,
    },
    /// A consent id was used twice.
    #[error("consent {consent} has already been recorded")]
    DuplicateConsent {
        /// The consent.
        consent: ConsentId,
    },
    /// The member has no consent with this id.
    #[error("the member has no consent {consent}")]
    UnknownConsent {
        /// The consent.
        consent: ConsentId,
    },
    /// The consent was revoked already.
    #[error("consent {consent} has already been revoked")]
    ConsentAlreadyRevoked {
        /// The consent.
        consent: ConsentId,
    },
    /// No consent of this scope is in force, so there is nothing to revoke.
    #[error("no consent of the scope asked for is in force")]
    NothingToRevoke {
        /// The scope.
        scope: ConsentScope,
    },
    /// The consent named for a disclosure is revoked, expired or not yet signed at that time.
    #[error("consent {consent} is not in force at the time of the disclosure")]
    ConsentNotInForce {
        /// The consent.
        consent: ConsentId,
    },
    /// The consent named for a disclosure is a short form (`giveConsent`): the member's consent
    /// to the clinic's own contact, naming "the clinic", never a consent to disclose.
    #[error(
        "consent {consent} is a short-form consent to the clinic's own contact, not to disclosures"
    )]
    ConsentNotForDisclosure {
        /// The consent.
        consent: ConsentId,
    },
    /// The consent named for a disclosure does not name that recipient or its class.
    #[error("consent {consent} does not cover this recipient")]
    RecipientNotCovered {
        /// The consent.
        consent: ConsentId,
    },
    /// A disclosure id was used twice.
    #[error("disclosure {disclosure} has already been recorded")]
    DuplicateDisclosure {
        /// The disclosure.
        disclosure: DisclosureId,
    },
    /// A goal id was used twice.
    #[error("goal {goal} has already been set")]
    DuplicateGoal {
        /// The goal.
        goal: GoalId,
    },
    /// The member has no goal with this id.
    #[error("the member has no goal {goal}")]
    UnknownGoal {
        /// The goal.
        goal: GoalId,
    },
    /// The goal was achieved already.
    #[error("goal {goal} has already been achieved")]
    GoalAlreadyAchieved {
        /// The goal.
        goal: GoalId,
    },
    /// A check-in id was used twice.
    #[error("check-in {check_in} has already been scheduled")]
    DuplicateCheckIn {
        /// The check-in.
        check_in: CheckInId,
    },
    /// The member has no check-in with this id.
    #[error("the member has no check-in {check_in}")]
    UnknownCheckIn {
        /// The check-in.
        check_in: CheckInId,
    },
    /// The check-in was completed already.
    #[error("check-in {check_in} has already been completed")]
    CheckInAlreadyCompleted {
        /// The check-in.
        check_in: CheckInId,
    },
    /// The check-in was recorded as missed already.
    #[error("check-in {check_in} has already been recorded as missed")]
    CheckInAlreadyMissed {
        /// The check-in.
        check_in: CheckInId,
    },
    /// The check-in was still open when the member was discharged; the discharge closed it.
    #[error("check-in {check_in} was closed by a discharge")]
    CheckInClosedByDischarge {
        /// The check-in.
        check_in: CheckInId,
    },
    /// A check-in cannot be missed before its due time.
    #[error("check-in {check_in} is not due yet")]
    CheckInNotYetDue {
        /// The check-in.
        check_in: CheckInId,
        /// When it is due.
        due_at: OffsetDateTime,
    },
    /// The member has no follow-up with this id.
    #[error("the member has no follow-up {follow_up}")]
    UnknownFollowUp {
        /// The follow-up.
        follow_up: FollowUpId,
    },
    /// A follow-up cannot fall due before its day.
    #[error("follow-up {follow_up} is not due yet")]
    FollowUpNotYetDue {
        /// The follow-up.
        follow_up: FollowUpId,
        /// When it falls due.
        due_at: OffsetDateTime,
    },
    /// The follow-up was marked due already.
    #[error("follow-up {follow_up} is already due")]
    FollowUpAlreadyDue {
        /// The follow-up.
        follow_up: FollowUpId,
    },
    /// The follow-up's outcome was recorded already.
    #[error("follow-up {follow_up} has already been completed")]
    FollowUpAlreadyCompleted {
        /// The follow-up.
        follow_up: FollowUpId,
    },
    /// Records must be kept for the retention period after the later of the last discharge
    /// and the last disclosure.
    #[error("the member's treatment records are still within the retention period")]
    RetentionNotElapsed {
        /// The first instant erasure is allowed.
        until: OffsetDateTime,
    },
}

impl MemberError {
    /// Whether this is bad input, a missing thing, or a rule conflict (for the API).
    pub const fn kind(&self) -> ErrorKind {
        match self {
            Self::Value(_) => ErrorKind::InvalidInput,
            Self::UnknownMember
            | Self::UnknownConsent { .. }
            | Self::UnknownGoal { .. }
            | Self::UnknownCheckIn { .. }
            | Self::UnknownFollowUp { .. } => ErrorKind::NotFound,
            _ => ErrorKind::Conflict,
        }
    }

    /// Whether the input itself was invalid (`BAD_USER_INPUT`), as opposed to refused by a rule.
    pub const fn is_invalid_input(&self) -> bool {
        matches!(self.kind(), ErrorKind::InvalidInput)
    }
}
