//! The vocabulary of the treatment pipeline: stages, ASAM levels of care, referral
//! sources, discharge reasons, aftercare plans and follow-up outcomes.

text_enum! {
    /// Where a member is in the pipeline; derived from the member's events, one at a time.
    pub enum Stage ("stage") {
        /// An inquiry or referral arrived (MemberReferred).
        Referred => "referred",
        /// The assessment is done (IntakeCompleted).
        Intake => "intake",
        /// Admitted or readmitted to a program.
        InTreatment => "in_treatment",
        /// Left treatment other than by completing it.
        Discharged => "discharged",
        /// A completed discharge started the aftercare plan.
        Aftercare => "aftercare",
        /// Enrolled in the alumni program.
        Alumni => "alumni",
    }
}

impl Stage {
    /// The stage in plain words, for messages to clinicians.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Referred => "referred",
            Self::Intake => "assessed at intake",
            Self::InTreatment => "in treatment",
            Self::Discharged => "discharged",
            Self::Aftercare => "in aftercare",
            Self::Alumni => "an alumnus",
        }
    }
}

text_enum! {
    /// ASAM levels of care, from most to least intensive.
    pub enum LevelOfCare ("level of care") {
        /// ASAM withdrawal management (detox).
        WithdrawalManagement => "withdrawal_management",
        /// ASAM level 3.x, residential.
        Residential => "residential",
        /// ASAM level 2.5, partial hospitalization.
        PartialHospitalization => "partial_hospitalization",
        /// ASAM level 2.1, intensive outpatient.
        IntensiveOutpatient => "intensive_outpatient",
        /// ASAM level 1, outpatient.
        Outpatient => "outpatient",
    }
}

impl LevelOfCare {
    /// The ASAM level number as clinicians write it.
    pub const fn asam_level(self) -> &'static str {
        match self {
            Self::WithdrawalManagement => "WM",
            Self::Residential => "3",
            Self::PartialHospitalization => "2.5",
            Self::IntensiveOutpatient => "2.1",
            Self::Outpatient => "1",
        }
    }
}

text_enum! {
    /// Who sent the member to the clinic.
    pub enum ReferralSource ("referral source") {
        /// The member came on their own.
        SelfReferral => "self",
        /// A family member referred them.
        Family => "family",
        /// A court or probation officer.
        Court => "court",
        /// A hospital (emergency department, inpatient unit).
        Hospital => "hospital",
        /// Another health or treatment provider.
        Provider => "provider",
        /// An employer or employee-assistance program.
        Employer => "employer",
        /// Anything else.
        Other => "other",
    }
}

text_enum! {
    /// Why a member left treatment; only `completed` starts aftercare.
    pub enum DischargeReason ("discharge reason") {
        /// The treatment plan was completed.
        Completed => "completed",
        /// The member left against clinical advice.
        AgainstAdvice => "against_advice",
        /// Transferred to another provider.
        Transferred => "transferred",
        /// Discharged for administrative reasons.
        Administrative => "administrative",
    }
}

text_enum! {
    /// The main element of an aftercare plan.
    #[derive(Default)]
    pub enum AftercarePlan ("aftercare plan") {
        /// Continuing in the clinic's alumni group.
        #[default]
        AlumniGroup => "alumni_group",
        /// Stepping down to another provider.
        StepDownProvider => "step_down_provider",
        /// Community resources (mutual-help meetings and the like).
        CommunityResources => "community_resources",
    }
}

text_enum! {
    /// What an alumni follow-up found.
    pub enum FollowUpOutcome ("follow-up outcome") {
        /// No use since the last contact.
        Abstinent => "abstinent",
        /// Some use, less than before.
        ReducedUse => "reduced_use",
        /// Returned to use.
        Relapsed => "relapsed",
        /// Readmitted to treatment.
        Readmitted => "readmitted",
        /// Could not be reached.
        Unreachable => "unreachable",
    }
}

text_enum! {
    /// Where a follow-up is: planned, due (on the staff list, emailed), or completed.
    pub enum FollowUpStatus ("follow-up status") {
        /// Planned at aftercare start; not yet due.
        Planned => "planned",
        /// Its day has come (FollowUpDue); waiting for an outcome.
        Due => "due",
        /// Its outcome is recorded (FollowUpCompleted).
        Completed => "completed",
    }
}
