//! What staff and the system ask of a member's stream. Each command carries its own
//! time (`at`, or `now` for the scheduler's commands) and, where it is a business fact,
//! its actor; values arrive validated.

use time::OffsetDateTime;

use crate::aftercare::DEFAULT_FOLLOW_UP_OFFSETS_DAYS;
use crate::consent::{
    SHORT_FORM_EXPIRES_ON, SHORT_FORM_RECIPIENT, SHORT_FORM_SIGNED_BY, SHORT_FORM_VERSION,
};
use crate::ids::{CheckInId, ConsentId, DisclosureId, FollowUpId, GoalId, MemberId};
use crate::values::{
    AftercarePlan, CheckInChannel, ConsentKind, ConsentScope, Craving, DischargeReason, Email,
    FollowUpOutcome, LevelOfCare, Mood, PersonName, Phone, ReferralSource, Text,
};

/// Record a referral or inquiry; starts the member's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferMember {
    /// The new member's id (chosen by the shell).
    pub member: MemberId,
    /// Their name.
    pub name: PersonName,
    /// Their email, if given.
    pub email: Option<Email>,
    /// Their phone, if given.
    pub phone: Option<Phone>,
    /// Who referred them.
    pub source: ReferralSource,
    /// The primary substance, if known.
    pub primary_substance: Option<Text>,
    /// When the referral arrived.
    pub at: OffsetDateTime,
}

/// Record the intake assessment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteIntake {
    /// The assessing clinician.
    pub assessed_by: Text,
    /// The recommended ASAM level.
    pub recommended_level: LevelOfCare,
    /// When.
    pub at: OffsetDateTime,
}

/// Admit an assessed member to a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmitMember {
    /// The level of care.
    pub level_of_care: LevelOfCare,
    /// The primary counselor (staff `sub`), if assigned.
    pub primary_counselor: Option<Text>,
    /// When (may be in the past).
    pub at: OffsetDateTime,
}

/// Step a member in treatment up or down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeLevelOfCare {
    /// The new level.
    pub to: LevelOfCare,
    /// Why.
    pub reason: Text,
    /// When.
    pub at: OffsetDateTime,
}

/// Record a written 42 CFR §2.31 consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiveConsent {
    /// The consent's id.
    pub consent: ConsentId,
    /// What the clinic uses it for.
    pub scope: ConsentScope,
    /// Its kind.
    pub kind: ConsentKind,
    /// The named recipient or class.
    pub recipient: Text,
    /// The purpose.
    pub purpose: Text,
    /// What information it covers.
    pub information: Text,
    /// Its expiry date, if any.
    pub expires_at: Option<OffsetDateTime>,
    /// Its expiry event or condition, if any.
    pub expires_on: Option<Text>,
    /// Who signed (the member, or a representative and their authority).
    pub signed_by: Text,
    /// When it was signed.
    pub signed_at: OffsetDateTime,
    /// The form version.
    pub form_version: Text,
}

impl GiveConsent {
    /// The short form (`giveConsent(member, scope)`): a standard consent, signed by the
    /// member at `at`, for the clinic itself, with the scope's purpose and information,
    /// in force until revoked.
    pub fn short_form(consent: ConsentId, scope: ConsentScope, at: OffsetDateTime) -> Self {
        Self {
            consent,
            scope,
            kind: ConsentKind::Standard,
            recipient: fixed(SHORT_FORM_RECIPIENT),
            purpose: fixed(scope.default_purpose()),
            information: fixed(scope.default_information()),
            expires_at: None,
            expires_on: Some(fixed(SHORT_FORM_EXPIRES_ON)),
            signed_by: fixed(SHORT_FORM_SIGNED_BY),
            signed_at: at,
            form_version: fixed(SHORT_FORM_VERSION),
        }
    }
}

/// A constant of this crate as a [`Text`] (the constants are tested to be valid texts).
fn fixed(text: &'static str) -> Text {
    Text::from_static(text)
}

/// Record the revocation of one consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeConsent {
    /// The consent.
    pub consent: ConsentId,
    /// How the revocation was received.
    pub how_received: Text,
    /// When it was received.
    pub at: OffsetDateTime,
}

/// Revoke every consent of a scope in force at `at` (the short `revokeConsent(member, scope)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeConsentsOfScope {
    /// The scope.
    pub scope: ConsentScope,
    /// How the revocation was received.
    pub how_received: Text,
    /// When it was received.
    pub at: OffsetDateTime,
}

/// Add a goal to the treatment plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetGoal {
    /// The goal's id.
    pub goal: GoalId,
    /// The goal in words.
    pub text: Text,
    /// When.
    pub at: OffsetDateTime,
}

/// Record that a goal was achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AchieveGoal {
    /// The goal.
    pub goal: GoalId,
    /// When.
    pub at: OffsetDateTime,
}

/// Schedule a check-in (a due time in the past is allowed: it is marked missed next tick).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleCheckIn {
    /// The check-in's id.
    pub check_in: CheckInId,
    /// When it is due.
    pub due_at: OffsetDateTime,
    /// How it is to be made.
    pub channel: CheckInChannel,
    /// When it was scheduled.
    pub at: OffsetDateTime,
}

/// Record a check-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteCheckIn {
    /// The check-in.
    pub check_in: CheckInId,
    /// Mood, 1 to 5.
    pub mood: Mood,
    /// Craving, 0 to 10.
    pub craving: Craving,
    /// Used since the last check-in.
    pub used: bool,
    /// When.
    pub at: OffsetDateTime,
}

/// The scheduler's command: a check-in's due time passed without it being completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkCheckInMissed {
    /// The check-in.
    pub check_in: CheckInId,
    /// The scheduler's current time.
    pub now: OffsetDateTime,
}

/// Discharge a member from treatment; a completed discharge also starts aftercare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DischargeMember {
    /// Why.
    pub reason: DischargeReason,
    /// When (may be in the past).
    pub at: OffsetDateTime,
    /// The aftercare plan, used when the reason is `completed`.
    pub plan: AftercarePlan,
    /// Follow-up days after discharge, used when the reason is `completed`.
    pub follow_up_offsets_days: Vec<u16>,
}

impl DischargeMember {
    /// A discharge with the default plan (alumni group) and follow-ups (7, 30, 90, 180, 365 days).
    pub fn new(reason: DischargeReason, at: OffsetDateTime) -> Self {
        Self {
            reason,
            at,
            plan: AftercarePlan::default(),
            follow_up_offsets_days: DEFAULT_FOLLOW_UP_OFFSETS_DAYS.to_vec(),
        }
    }
}

/// The scheduler's command: a follow-up's day has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkFollowUpDue {
    /// The follow-up.
    pub follow_up: FollowUpId,
    /// The scheduler's current time.
    pub now: OffsetDateTime,
}

/// Record a follow-up's outcome (it may be recorded before the day, if contact came early).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFollowUp {
    /// The follow-up.
    pub follow_up: FollowUpId,
    /// What it found.
    pub outcome: FollowUpOutcome,
    /// When.
    pub at: OffsetDateTime,
}

/// Enroll a member in aftercare in the alumni program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollAlumni {
    /// When.
    pub at: OffsetDateTime,
}

/// Readmit a discharged member (or one in aftercare or alumni) to treatment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadmitMember {
    /// The level of care.
    pub level_of_care: LevelOfCare,
    /// The primary counselor for this episode, if assigned.
    pub primary_counselor: Option<Text>,
    /// When.
    pub at: OffsetDateTime,
}

/// Record a disclosure of the member's records under a consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordDisclosure {
    /// The disclosure's id.
    pub disclosure: DisclosureId,
    /// The consent relied on.
    pub consent: ConsentId,
    /// Who received the records.
    pub recipient: Text,
    /// The class the recipient belongs to, if the consent names a class
    /// (e.g. "treating providers").
    pub recipient_class: Option<Text>,
    /// Why.
    pub purpose: Text,
    /// What was disclosed.
    pub description: Text,
    /// How (fax, secure email, ...).
    pub channel: Text,
    /// The staff member disclosing.
    pub disclosed_by: Text,
    /// When.
    pub at: OffsetDateTime,
}

/// Change how the clinic knows and reaches the member: their name, email address or phone
/// number (outreach goes to the address on file when it is sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeMemberDetails {
    /// The new name, or `None` to keep it.
    pub name: Option<PersonName>,
    /// What happens to the email address.
    pub email: DetailChange<Email>,
    /// What happens to the phone number.
    pub phone: DetailChange<Phone>,
    /// When the clinic learned of the change.
    pub at: OffsetDateTime,
}

/// What a change of details does to one detail the member may not have: a request says only
/// what changes, and "no email any more" differs from "email unchanged".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DetailChange<T> {
    /// Left as it is.
    #[default]
    Keep,
    /// Replaced (or given, where there was none).
    Set(T),
    /// Removed: the member has none any more.
    Remove,
}

impl<T: Into<String>> DetailChange<T> {
    /// The detail after the change, from the detail before it.
    pub fn apply(self, before: Option<&str>) -> Option<String> {
        match self {
            Self::Keep => before.map(str::to_owned),
            Self::Set(value) => Some(value.into()),
            Self::Remove => None,
        }
    }
}

/// Erase the member's personal data (infra then destroys their data key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EraseMember {
    /// Why, as a category without personal data ("member request", "retention expired").
    pub reason: Text,
    /// When.
    pub at: OffsetDateTime,
    /// How long treatment records must be kept after the last discharge (clinic setting).
    pub retention_days: u32,
}

/// Every command of a member stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is its command struct, documented above
pub enum MemberCommand {
    ReferMember(ReferMember),
    CompleteIntake(CompleteIntake),
    AdmitMember(AdmitMember),
    ChangeLevelOfCare(ChangeLevelOfCare),
    GiveConsent(GiveConsent),
    RevokeConsent(RevokeConsent),
    RevokeConsentsOfScope(RevokeConsentsOfScope),
    SetGoal(SetGoal),
    AchieveGoal(AchieveGoal),
    ScheduleCheckIn(ScheduleCheckIn),
    CompleteCheckIn(CompleteCheckIn),
    MarkCheckInMissed(MarkCheckInMissed),
    DischargeMember(DischargeMember),
    MarkFollowUpDue(MarkFollowUpDue),
    RecordFollowUp(RecordFollowUp),
    EnrollAlumni(EnrollAlumni),
    ReadmitMember(ReadmitMember),
    RecordDisclosure(RecordDisclosure),
    ChangeMemberDetails(ChangeMemberDetails),
    EraseMember(EraseMember),
}

macro_rules! command_from {
    ($($variant:ident),+ $(,)?) => {
        $(
            impl From<$variant> for MemberCommand {
                fn from(command: $variant) -> Self {
                    Self::$variant(command)
                }
            }
        )+

        impl MemberCommand {
            /// The command's name, for logs and traces.
            pub const fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($variant)),+
                }
            }
        }
    };
}

command_from!(
    ReferMember,
    CompleteIntake,
    AdmitMember,
    ChangeLevelOfCare,
    GiveConsent,
    RevokeConsent,
    RevokeConsentsOfScope,
    SetGoal,
    AchieveGoal,
    ScheduleCheckIn,
    CompleteCheckIn,
    MarkCheckInMissed,
    DischargeMember,
    MarkFollowUpDue,
    RecordFollowUp,
    EnrollAlumni,
    ReadmitMember,
    RecordDisclosure,
    ChangeMemberDetails,
    EraseMember,
);
