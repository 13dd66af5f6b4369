//! The kinds of 42 CFR Part 2 consent the clinic records.

text_enum! {
    /// What a consent is for, as the clinic uses it (it decides which outreach it allows).
    pub enum ConsentScope ("consent scope") {
        /// The clinic may email the member (reminders, follow-ups), without clinical detail.
        EmailOutreach => "email_outreach",
        /// The clinic may talk with the member's family.
        FamilyContact => "family_contact",
    }
}

impl ConsentScope {
    /// The purpose written on a short-form consent of this scope.
    pub const fn default_purpose(self) -> &'static str {
        match self {
            Self::EmailOutreach => "email reminders and follow-up contact from the clinic",
            Self::FamilyContact => "contact with the member's family about their care",
        }
    }

    /// The information a short-form consent of this scope covers.
    pub const fn default_information(self) -> &'static str {
        match self {
            Self::EmailOutreach => {
                "the member's name and email address, and appointment and follow-up dates; no clinical detail"
            }
            Self::FamilyContact => "attendance and general progress in treatment",
        }
    }
}

text_enum! {
    /// The kind of consent under 42 CFR §2.31 (the 2024 rule).
    #[derive(Default)]
    pub enum ConsentKind ("consent kind") {
        /// A consent for a named recipient or class, for a stated purpose.
        #[default]
        Standard => "standard",
        /// A single consent for all future uses for treatment, payment and health care operations.
        TreatmentPaymentOperations => "treatment_payment_operations",
        /// A separate consent for SUD counseling notes.
        CounselingNotes => "counseling_notes",
    }
}
