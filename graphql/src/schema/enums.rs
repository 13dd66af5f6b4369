//! GraphQL mirrors of the domain's vocabulary. The domain derives no GraphQL types
//! (ARCHITECTURE.md); `remote` generates the conversions both ways, so a new domain variant
//! without its mirror fails to compile.

use async_graphql::Enum;
use clinic_domain::values;

/// A staff role.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(remote = "crate::auth::Role")]
pub enum Role {
    /// Everything in their clinic.
    Admin,
    /// Members and groups.
    Clinician,
    /// Their groups.
    Facilitator,
    /// Referrals and intake.
    Intake,
    /// Reads everything, changes nothing.
    Auditor,
}

/// Where a member is in the pipeline.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(remote = "values::Stage")]
pub enum Stage {
    /// Referred or inquired.
    Referred,
    /// Assessed at intake.
    Intake,
    /// Admitted (or readmitted).
    InTreatment,
    /// Left treatment other than by completing it.
    Discharged,
    /// Completed treatment; aftercare running.
    Aftercare,
    /// In the alumni programme.
    Alumni,
}

/// ASAM levels of care.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(remote = "values::LevelOfCare")]
pub enum LevelOfCare {
    /// Withdrawal management.
    WithdrawalManagement,
    /// Residential (3.x).
    Residential,
    /// Partial hospitalization (2.5).
    PartialHospitalization,
    /// Intensive outpatient (2.1).
    IntensiveOutpatient,
    /// Outpatient (1).
    Outpatient,
}

/// How a check-in is held.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(remote = "values::CheckInChannel")]
pub enum CheckInChannel {
    /// A phone call.
    Call,
    /// The mobile app.
    App,
    /// In person at the clinic.
    InPerson,
}

/// Who referred the member.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(remote = "values::ReferralSource")]
pub enum ReferralSource {
    /// The member themself.
    #[graphql(name = "SELF")]
    SelfReferral,
    /// Family.
    Family,
    /// A court.
    Court,
    /// A hospital.
    Hospital,
    /// Another provider.
    Provider,
    /// An employer.
    Employer,
    /// Anyone else.
    Other,
}

/// Therapy group models.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(remote = "values::GroupModel")]
pub enum GroupModel {
    /// Psychoeducation.
    Psychoeducation,
    /// Skills development.
    SkillsDevelopment,
    /// Cognitive-behavioral.
    CognitiveBehavioral,
    /// Support / 12-step.
    Support,
    /// Interpersonal process.
    InterpersonalProcess,
    /// Integrated.
    Integrated,
}

/// A member's attendance at a session.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(remote = "values::AttendanceStatus")]
pub enum AttendanceStatus {
    /// On time.
    Present,
    /// Late, but there.
    Late,
    /// Absent with a reason.
    Excused,
    /// Absent.
    Absent,
}

/// Why treatment ended.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(remote = "values::DischargeReason")]
pub enum DischargeReason {
    /// Completed: starts aftercare.
    Completed,
    /// Left against clinical advice.
    AgainstAdvice,
    /// Transferred elsewhere.
    Transferred,
    /// Administrative discharge.
    Administrative,
}

/// What an alumni follow-up found.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(remote = "values::FollowUpOutcome")]
pub enum FollowUpOutcome {
    /// No use.
    Abstinent,
    /// Less use.
    ReducedUse,
    /// Returned to use.
    Relapsed,
    /// Back in treatment.
    Readmitted,
    /// Could not be reached.
    Unreachable,
}

/// What a consent allows.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(remote = "values::ConsentScope")]
pub enum ConsentScope {
    /// Emails to the member.
    EmailOutreach,
    /// Contact with family.
    FamilyContact,
}

/// The kind of a written consent (42 CFR 2.31).
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(remote = "values::ConsentKind")]
pub enum ConsentKind {
    /// A named recipient or class, for a stated purpose.
    Standard,
    /// One consent for all future uses for treatment, payment and health care operations.
    TreatmentPaymentOperations,
    /// A separate consent for counseling notes.
    CounselingNotes,
}

/// Which part of a member's record a read touched (the access log's category).
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum DataCategory {
    /// Name, contact, stage, level of care.
    Profile,
    /// Sessions attended or missed.
    Attendance,
    /// Scheduled, completed and missed check-ins.
    CheckIns,
    /// Written consents.
    Consents,
    /// Discharges and follow-up outcomes.
    Outcomes,
    /// The accounting of disclosures.
    Disclosures,
    /// The member's event history or past state (auditors, time travel).
    History,
}

impl DataCategory {
    /// The stored name, in `access_log.category`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Profile => "profile",
            Self::Attendance => "attendance",
            Self::CheckIns => "check_ins",
            Self::Consents => "consents",
            Self::Outcomes => "outcomes",
            Self::Disclosures => "disclosures",
            Self::History => "history",
        }
    }

    /// Reads a stored name back; `None` for one this build does not know.
    pub fn parse(stored: &str) -> Option<Self> {
        [
            Self::Profile,
            Self::Attendance,
            Self::CheckIns,
            Self::Consents,
            Self::Outcomes,
            Self::Disclosures,
            Self::History,
        ]
        .into_iter()
        .find(|category| category.as_str() == stored)
    }
}

/// A check-in's state.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(remote = "values::CheckInStatus")]
pub enum CheckInStatus {
    /// Due, not yet done.
    Scheduled,
    /// Done.
    Completed,
    /// Its due time passed without it.
    Missed,
}
