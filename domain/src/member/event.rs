//! The facts recorded in a member's stream (`member-<uuid>`), spelled as in DOMAIN.md.
//!
//! Each struct is a stored payload (see [`crate::payload`]): fields are only ever added
//! (with `#[serde(default)]`), never renamed; a breaking change gets a new schema version
//! and an upcaster. Personal fields are plain `String`s so infra can encrypt them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::ids::{CheckInId, ConsentId, DisclosureId, FollowUpId, GoalId, MemberId};
use crate::payload::{stored_events, DecodeError};
use crate::values::{
    AftercarePlan, CheckInChannel, ConsentKind, ConsentScope, Craving, DischargeReason,
    FollowUpOutcome, LevelOfCare, Mood, ReferralSource,
};

/// An inquiry or referral arrived: the first event of every member stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReferred {
    /// The member (also in the stream id; kept here so the payload stands alone).
    pub member_id: MemberId,
    /// The member's name. Personal.
    pub name: String,
    /// The member's email address, if given. Personal.
    #[serde(default)]
    pub email: Option<String>,
    /// The member's phone number, if given. Personal.
    #[serde(default)]
    pub phone: Option<String>,
    /// Who referred them.
    pub source: ReferralSource,
    /// The primary substance, if known. Personal (and clinical).
    #[serde(default)]
    pub primary_substance: Option<String>,
    /// When the referral arrived.
    #[serde(with = "time::serde::rfc3339")]
    pub referred_at: OffsetDateTime,
}

/// The intake assessment is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntakeCompleted {
    /// The clinician who assessed (their `sub` or name as staff).
    pub assessed_by: String,
    /// The ASAM level of care the assessment recommends.
    pub recommended_level: LevelOfCare,
    /// When the assessment was completed.
    #[serde(with = "time::serde::rfc3339")]
    pub completed_at: OffsetDateTime,
}

/// The member was admitted to a program at a level of care.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAdmitted {
    /// The level of care admitted to.
    pub level_of_care: LevelOfCare,
    /// The primary counselor (staff `sub`), who receives outreach items.
    #[serde(default)]
    pub primary_counselor: Option<String>,
    /// When the member was admitted.
    #[serde(with = "time::serde::rfc3339")]
    pub admitted_at: OffsetDateTime,
}

/// A step up or step down between levels of care.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelOfCareChanged {
    /// The level before.
    pub from: LevelOfCare,
    /// The level after.
    pub to: LevelOfCare,
    /// Why, in the clinician's words. Personal (may describe the member).
    pub reason: String,
    /// When the change took effect.
    #[serde(with = "time::serde::rfc3339")]
    pub changed_at: OffsetDateTime,
}

/// A 42 CFR Part 2 (§2.31) written consent was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentGiven {
    /// The consent.
    pub consent_id: ConsentId,
    /// What the clinic uses it for (which outreach it allows).
    pub scope: ConsentScope,
    /// Standard, treatment-payment-operations, or counseling notes.
    pub kind: ConsentKind,
    /// The named recipient, or a class of recipients. Personal.
    pub recipient: String,
    /// The purpose of the disclosure. Personal (may name people).
    pub purpose: String,
    /// What information the consent covers. Personal.
    pub information: String,
    /// When it expires, if it expires at a date.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// The expiry event or condition, if any (e.g. "end of treatment"), as written on the form.
    #[serde(default)]
    pub expires_on: Option<String>,
    /// Who signed: the member, or a representative and their authority. Personal.
    pub signed_by: String,
    /// When it was signed.
    #[serde(with = "time::serde::rfc3339")]
    pub signed_at: OffsetDateTime,
    /// The version of the consent form used.
    pub form_version: String,
}

/// The member revoked a consent; it stops future disclosures only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRevoked {
    /// The revoked consent.
    pub consent_id: ConsentId,
    /// When the revocation was received.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// How it was received (in writing, orally, ...). Personal (may name people).
    pub how_received: String,
}

/// A treatment-plan goal was set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoalSet {
    /// The goal.
    pub goal_id: GoalId,
    /// The goal in words. Personal.
    pub text: String,
    /// When it was set.
    #[serde(with = "time::serde::rfc3339")]
    pub set_at: OffsetDateTime,
}

/// A treatment-plan goal was achieved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoalAchieved {
    /// The goal.
    pub goal_id: GoalId,
    /// When it was achieved.
    #[serde(with = "time::serde::rfc3339")]
    pub achieved_at: OffsetDateTime,
}

/// A check-in is due at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInScheduled {
    /// The check-in.
    pub check_in_id: CheckInId,
    /// When it is due.
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// How it is to be made.
    pub channel: CheckInChannel,
}

/// The member checked in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInCompleted {
    /// The check-in.
    pub check_in_id: CheckInId,
    /// Mood, 1 to 5.
    pub mood: Mood,
    /// Craving, 0 to 10.
    pub craving: Craving,
    /// Whether they used since the last check-in.
    pub used: bool,
    /// When they checked in.
    #[serde(with = "time::serde::rfc3339")]
    pub completed_at: OffsetDateTime,
}

/// The due time of a check-in passed without it being completed (recorded by the system).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInMissed {
    /// The check-in.
    pub check_in_id: CheckInId,
    /// When it was due.
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
}

/// The member left treatment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberDischarged {
    /// Why; `completed` is followed by [`AftercareStarted`] in the same decision.
    pub reason: DischargeReason,
    /// When the member was discharged (may be earlier than when it was recorded).
    #[serde(with = "time::serde::rfc3339")]
    pub discharged_at: OffsetDateTime,
}

/// One follow-up planned when aftercare starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFollowUp {
    /// The follow-up (derived: see [`crate::aftercare::follow_up_id`]).
    pub follow_up_id: FollowUpId,
    /// Days after discharge.
    pub day_offset: u16,
    /// Discharge time plus the offset.
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
}

/// The aftercare plan began, after a completed discharge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AftercareStarted {
    /// The main element of the plan.
    pub plan: AftercarePlan,
    /// The follow-up schedule.
    pub follow_ups: Vec<PlannedFollowUp>,
    /// When aftercare began (the discharge time).
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
}

/// A follow-up's day came: it is emailed (with consent) and listed for staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUpDue {
    /// The follow-up.
    pub follow_up_id: FollowUpId,
    /// Days after discharge.
    pub day_offset: u16,
    /// When it fell due.
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
}

/// A follow-up's outcome was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUpCompleted {
    /// The follow-up.
    pub follow_up_id: FollowUpId,
    /// What it found.
    pub outcome: FollowUpOutcome,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub completed_at: OffsetDateTime,
}

/// The member joined the alumni program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlumniEnrolled {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub enrolled_at: OffsetDateTime,
}

/// The member returned to treatment after a discharge. The previous episode's follow-ups
/// still planned are dropped (projections must drop them too); since readmissions decide a
/// `FollowUpCompleted` or `FollowUpDue` for each before this event, none is left in newer logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReadmitted {
    /// The level of care readmitted to.
    pub level_of_care: LevelOfCare,
    /// The primary counselor for this episode (staff `sub`).
    #[serde(default)]
    pub primary_counselor: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub readmitted_at: OffsetDateTime,
}

/// Records of the member were disclosed under a consent (the accounting of disclosures).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosureMade {
    /// The disclosure.
    pub disclosure_id: DisclosureId,
    /// The consent that allowed it.
    pub consent_id: ConsentId,
    /// Who received the records. Personal.
    pub recipient: String,
    /// Why. Personal (may name people).
    pub purpose: String,
    /// What was disclosed. Personal.
    pub description: String,
    /// How (fax, secure email, ...).
    pub channel: String,
    /// The staff member who disclosed.
    pub disclosed_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub disclosed_at: OffsetDateTime,
    /// The 42 CFR §2.32 notice that accompanied it ([`crate::consent::DISCLOSURE_NOTICE`]).
    pub notice: String,
}

/// The member's name, email address or phone number changed (a new address, a married name,
/// a typo at referral). Carries the whole set as it now stands, so a reader needs only the
/// last such event (or the referral) to know how to reach the member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberDetailsChanged {
    /// The member's name. Personal.
    pub name: String,
    /// The member's email address, if any. Personal.
    #[serde(default)]
    pub email: Option<String>,
    /// The member's phone number, if any. Personal.
    #[serde(default)]
    pub phone: Option<String>,
    /// When the clinic learned of the change.
    #[serde(with = "time::serde::rfc3339")]
    pub changed_at: OffsetDateTime,
}

/// The member's personal data was erased (their data key destroyed by infra).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberErased {
    /// Why (a reason category such as "member request"); must hold no personal data,
    /// since it stays readable.
    pub reason: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub erased_at: OffsetDateTime,
}

/// Every fact of a member stream.
///
/// The personal data in these events belongs to the stream's member.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is its payload struct, documented above
pub enum MemberEvent {
    MemberReferred(MemberReferred),
    IntakeCompleted(IntakeCompleted),
    MemberAdmitted(MemberAdmitted),
    LevelOfCareChanged(LevelOfCareChanged),
    ConsentGiven(ConsentGiven),
    ConsentRevoked(ConsentRevoked),
    GoalSet(GoalSet),
    GoalAchieved(GoalAchieved),
    CheckInScheduled(CheckInScheduled),
    CheckInCompleted(CheckInCompleted),
    CheckInMissed(CheckInMissed),
    MemberDischarged(MemberDischarged),
    AftercareStarted(AftercareStarted),
    FollowUpDue(FollowUpDue),
    FollowUpCompleted(FollowUpCompleted),
    AlumniEnrolled(AlumniEnrolled),
    MemberReadmitted(MemberReadmitted),
    DisclosureMade(DisclosureMade),
    MemberDetailsChanged(MemberDetailsChanged),
    MemberErased(MemberErased),
}

stored_events!(MemberEvent, "member", {
    MemberReferred => 1,
    IntakeCompleted => 1,
    MemberAdmitted => 1,
    LevelOfCareChanged => 1,
    ConsentGiven => 1,
    ConsentRevoked => 1,
    GoalSet => 1,
    GoalAchieved => 1,
    CheckInScheduled => 1,
    CheckInCompleted => 1,
    CheckInMissed => 1,
    MemberDischarged => 1,
    AftercareStarted => 1,
    FollowUpDue => 1,
    FollowUpCompleted => 1,
    AlumniEnrolled => 1,
    MemberReadmitted => 1,
    DisclosureMade => 1,
    MemberDetailsChanged => 1,
    MemberErased => 1,
});

impl MemberEvent {
    /// Reads a stored row back. Every member event is still at schema version 1, so
    /// only the current version is accepted.
    pub fn from_stored(
        event_type: &str,
        schema_version: u16,
        data: Value,
    ) -> Result<Self, DecodeError> {
        let current = Self::current_schema_version(event_type).ok_or_else(|| {
            DecodeError::UnknownEventType {
                category: "member",
                event_type: event_type.to_owned(),
            }
        })?;
        if schema_version == current {
            Self::decode_current(event_type, data)
        } else {
            Err(DecodeError::UnsupportedVersion {
                event_type: Self::static_type_name(event_type),
                schema_version,
                current,
            })
        }
    }

    /// The crypto-shredding boundary: the top-level `data` fields of `event_type` that
    /// are the member's personal data (identifying, or free text that may identify).
    /// Infra encrypts them with the member's key; every one is a string or null.
    pub fn personal_fields(event_type: &str) -> &'static [&'static str] {
        match event_type {
            "MemberReferred" => &["name", "email", "phone", "primary_substance"],
            "MemberDetailsChanged" => &["name", "email", "phone"],
            "LevelOfCareChanged" => &["reason"],
            "ConsentGiven" => &[
                "recipient",
                "purpose",
                "information",
                "expires_on",
                "signed_by",
            ],
            "ConsentRevoked" => &["how_received"],
            "GoalSet" => &["text"],
            "DisclosureMade" => &["recipient", "purpose", "description"],
            _ => &[],
        }
    }

    /// Member events hold only their stream's member's personal data, so none names another
    /// member whose key would seal it (group events do: [`crate::group::GroupEvent::data_subject`]).
    pub const fn data_subject(&self) -> Option<MemberId> {
        None
    }

    /// When the fact happened in the clinic's world (not when it was recorded).
    pub fn occurred_at(&self) -> OffsetDateTime {
        match self {
            Self::MemberReferred(e) => e.referred_at,
            Self::IntakeCompleted(e) => e.completed_at,
            Self::MemberAdmitted(e) => e.admitted_at,
            Self::LevelOfCareChanged(e) => e.changed_at,
            Self::ConsentGiven(e) => e.signed_at,
            Self::ConsentRevoked(e) => e.received_at,
            Self::GoalSet(e) => e.set_at,
            Self::GoalAchieved(e) => e.achieved_at,
            Self::CheckInScheduled(e) => e.due_at,
            Self::CheckInCompleted(e) => e.completed_at,
            Self::CheckInMissed(e) => e.due_at,
            Self::MemberDischarged(e) => e.discharged_at,
            Self::AftercareStarted(e) => e.started_at,
            Self::FollowUpDue(e) => e.due_at,
            Self::FollowUpCompleted(e) => e.completed_at,
            Self::AlumniEnrolled(e) => e.enrolled_at,
            Self::MemberReadmitted(e) => e.readmitted_at,
            Self::DisclosureMade(e) => e.disclosed_at,
            Self::MemberDetailsChanged(e) => e.changed_at,
            Self::MemberErased(e) => e.erased_at,
        }
    }
}
