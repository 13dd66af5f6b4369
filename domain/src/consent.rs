//! 42 CFR Part 2 consent: when a consent is in force, whom it covers, and the notice
//! that accompanies every disclosure (§2.32).

use time::OffsetDateTime;

use crate::ids::ConsentId;
use crate::member::ConsentGiven;
use crate::values::{ConsentKind, ConsentScope};

/// The notice that must accompany each disclosure made with the patient's consent
/// (42 CFR §2.32(a)(1), as amended in 2024). Recorded in every `DisclosureMade`.
pub const DISCLOSURE_NOTICE: &str = "This record which has been disclosed to you is protected by \
Federal confidentiality rules (42 CFR part 2). These rules prohibit you from using or disclosing \
this record, or testimony that describes the information contained in this record, in any civil, \
criminal, administrative, or legislative proceedings by any Federal, State, or local authority, \
against the patient, unless authorized by the consent of the patient, except as provided at \
42 CFR 2.12(c)(5) or as authorized by a court in accordance with 42 CFR 2.64 or 2.65. In addition, \
the Federal rules prohibit you from making any other use or disclosure of this record unless at \
least one of the following applies: (i) Further use or disclosure is expressly permitted by the \
written consent of the individual whose information is being disclosed in this record or as \
otherwise permitted by 42 CFR part 2. (ii) You are a covered entity or business associate and \
have received the record for treatment, payment, or health care operations, or (iii) You have \
received the record from a covered entity or business associate as permitted by 45 CFR part 164, \
subparts A and E. A general authorization for the release of medical or other information is NOT \
sufficient to meet the required elements of written consent to further use or redisclose the \
record (see 42 CFR 2.31).";

/// The recipient written on a short-form consent (the clinic itself contacts the member).
pub const SHORT_FORM_RECIPIENT: &str = "the clinic";
/// Who signs a short-form consent.
pub const SHORT_FORM_SIGNED_BY: &str = "the member";
/// The expiry condition of a short-form consent (it has no expiry date).
pub const SHORT_FORM_EXPIRES_ON: &str = "revocation by the member";
/// The form version recorded for short-form consents.
pub const SHORT_FORM_VERSION: &str = "short-form-1";

/// A consent as the member's state holds it: what was given, and whether and when it
/// was revoked. Read side and deciders share it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// The consent.
    pub id: ConsentId,
    /// What the clinic uses it for.
    pub scope: ConsentScope,
    /// Its §2.31 kind.
    pub kind: ConsentKind,
    /// The named recipient or class.
    pub recipient: String,
    /// The purpose.
    pub purpose: String,
    /// What information it covers.
    pub information: String,
    /// Its expiry date, if any.
    pub expires_at: Option<OffsetDateTime>,
    /// Its expiry event or condition, if any: evaluated when it is the end of treatment
    /// ([`ends_with_treatment`]), otherwise for staff to act on.
    pub expires_on: Option<String>,
    /// When its expiry event happened, as the record shows: for a consent until the end of
    /// treatment, the first discharge after it was signed.
    pub ended_at: Option<OffsetDateTime>,
    /// Who signed.
    pub signed_by: String,
    /// When it was signed.
    pub signed_at: OffsetDateTime,
    /// The form version.
    pub form_version: String,
    /// When a revocation was received, if one was.
    pub revoked_at: Option<OffsetDateTime>,
}

impl Consent {
    /// The consent as given, not revoked.
    pub fn given(event: &ConsentGiven) -> Self {
        Self {
            id: event.consent_id,
            scope: event.scope,
            kind: event.kind,
            recipient: event.recipient.clone(),
            purpose: event.purpose.clone(),
            information: event.information.clone(),
            expires_at: event.expires_at,
            expires_on: event.expires_on.clone(),
            ended_at: None,
            signed_by: event.signed_by.clone(),
            signed_at: event.signed_at,
            form_version: event.form_version.clone(),
            revoked_at: None,
        }
    }

    /// In force at `at`: signed by then, not revoked by then, not expired by then (its date,
    /// or its expiry event as the record dates it: [`Self::ended_at`]).
    ///
    /// A revocation stops future disclosures only, so a disclosure recorded late for a
    /// time before the revocation was received is still covered. An expiry event other than
    /// the end of treatment is for staff to act on (by revoking or recording an end date).
    pub fn in_force_at(&self, at: OffsetDateTime) -> bool {
        self.signed_at <= at
            && self.revoked_at.is_none_or(|revoked| at < revoked)
            && self.expires_at.is_none_or(|expires| at < expires)
            && self.ended_at.is_none_or(|ended| at < ended)
    }

    /// The member was discharged at `at`: a consent until the end of treatment, signed by
    /// then, ends at the first such discharge (whatever order discharges and consents are
    /// recorded in).
    pub fn treatment_ended(&mut self, at: OffsetDateTime) {
        if self.signed_at <= at
            && self.expires_on.as_deref().is_some_and(ends_with_treatment)
            && self.ended_at.is_none_or(|ended| at < ended)
        {
            self.ended_at = Some(at);
        }
    }

    /// Whether automatic emails may rely on this consent: it ends by its expiry date, or only by
    /// the member's revocation. One that ends on an event (even the end of treatment, which
    /// the record dates only once the discharge is recorded, perhaps late) is left to people.
    /// The short form's own wording is compared exactly, on purpose: it is this crate's
    /// constant, and any other wording (a person's) leaves the emails to people, the safe side.
    pub fn end_is_on_record(&self) -> bool {
        self.expires_on
            .as_deref()
            .is_none_or(|on| on == SHORT_FORM_EXPIRES_ON)
    }

    /// Whether this consent names `recipient`, or the class `recipient_class` belongs
    /// to, ignoring case and surrounding whitespace.
    pub fn covers(&self, recipient: &str, recipient_class: Option<&str>) -> bool {
        same_name(&self.recipient, recipient)
            || recipient_class.is_some_and(|class| same_name(&self.recipient, class))
    }
}

/// A written expiry event as words to compare: lower case, single spaces, no punctuation or
/// spaces around it ("End of  treatment." and "\"end of treatment\" )" read "end of
/// treatment"; the slash of "N/A" stays).
fn expiry_words(expires_on: &str) -> String {
    let framing = |c: char| c.is_whitespace() || (c.is_ascii_punctuation() && c != '/');
    expires_on
        .trim_matches(framing)
        .split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a consent's written expiry event is the end of treatment, which the member's
/// discharge dates ("end of treatment", "discharge", "discharge from treatment"; case, spacing,
/// trailing punctuation and a leading "the" aside).
pub fn ends_with_treatment(expires_on: &str) -> bool {
    let words = expiry_words(expires_on);
    matches!(
        words.strip_prefix("the ").unwrap_or(&words),
        "end of treatment" | "discharge" | "discharge from treatment"
    )
}

/// Whether a written expiry event says there is none: 42 CFR 2.31 allows that only for a
/// treatment, payment and health care operations consent. The whole text ("none", "N/A.",
/// "never", "indefinite") or a phrase about expiry within it ("never expires", "valid until
/// revoked", "this consent will not expire", "no expiration date", "upon revocation"): the
/// usual wordings of a consent whose only end is the member's revocation. Words that only
/// sometimes mean it ("never later than", "permanent housing") count only alone.
pub fn says_no_expiry(expires_on: &str) -> bool {
    let text = expiry_words(&expires_on.replace(['\u{2018}', '\u{2019}'], "'"));
    const WHOLE: &[&str] = &[
        "none",
        "n/a",
        "na",
        "never",
        "indefinite",
        "permanent",
        "perpetual",
        "unlimited",
    ];
    if WHOLE.contains(&text.as_str()) {
        return true;
    }
    let words: Vec<&str> = text
        .split(' ')
        .map(|word| word.trim_matches(|c: char| c.is_ascii_punctuation() && c != '\''))
        .collect();
    const ANYWHERE: &[&str] = &["indefinitely", "perpetually", "forever"];
    const PHRASES: &[&[&str]] = &[
        &["never", "expire"],
        &["never", "expires"],
        &["never", "ends"],
        &["not", "expire"],
        &["won't", "expire"],
        &["doesn't", "expire"],
        &["no", "expiry"],
        &["no", "expiration"],
        &["no", "end", "date"],
        &["without", "expiry"],
        &["without", "expiration"],
        &["until", "revoked"],
        &["until", "revocation"],
        &["until", "withdrawn"],
        &["until", "i", "revoke"],
        &["until", "the", "member", "revokes"],
        &["upon", "revocation"],
    ];
    let has = |phrase: &[&str]| words.windows(phrase.len()).any(|w| w == phrase);
    words.iter().any(|word| ANYWHERE.contains(word)) || PHRASES.iter().any(|phrase| has(phrase))
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn consent() -> Consent {
        Consent {
            id: ConsentId::new(uuid::Uuid::from_u128(1)),
            scope: ConsentScope::FamilyContact,
            kind: ConsentKind::Standard,
            recipient: "Treating Providers".into(),
            purpose: "care coordination".into(),
            information: "attendance".into(),
            expires_at: Some(datetime!(2026-12-31 0:00 UTC)),
            expires_on: None,
            ended_at: None,
            signed_by: "the member".into(),
            signed_at: datetime!(2026-01-10 9:00 UTC),
            form_version: "v3".into(),
            revoked_at: None,
        }
    }

    #[test]
    fn a_consent_is_in_force_from_signing_until_it_expires() {
        let c = consent();
        assert!(!c.in_force_at(datetime!(2026-01-10 8:59 UTC)));
        assert!(c.in_force_at(datetime!(2026-01-10 9:00 UTC)));
        assert!(c.in_force_at(datetime!(2026-12-30 23:59 UTC)));
        assert!(!c.in_force_at(datetime!(2026-12-31 0:00 UTC)));
    }

    #[test]
    fn a_revocation_stops_only_later_disclosures() {
        let c = Consent {
            revoked_at: Some(datetime!(2026-03-01 12:00 UTC)),
            ..consent()
        };
        assert!(c.in_force_at(datetime!(2026-03-01 11:59 UTC)));
        assert!(!c.in_force_at(datetime!(2026-03-01 12:00 UTC)));
    }

    #[test]
    fn a_consent_until_the_end_of_treatment_ends_at_the_first_discharge_after_signing() {
        let mut c = Consent {
            expires_at: None,
            expires_on: Some("The end of  Treatment".into()),
            ..consent()
        };
        c.treatment_ended(datetime!(2026-01-01 0:00 UTC));
        assert_eq!(c.ended_at, None, "a discharge before it was signed");
        c.treatment_ended(datetime!(2026-09-01 10:00 UTC));
        c.treatment_ended(datetime!(2026-05-01 10:00 UTC));
        c.treatment_ended(datetime!(2026-10-01 10:00 UTC));
        assert_eq!(
            c.ended_at,
            Some(datetime!(2026-05-01 10:00 UTC)),
            "the first"
        );
        assert!(c.in_force_at(datetime!(2026-05-01 9:59 UTC)));
        assert!(!c.in_force_at(datetime!(2026-05-01 10:00 UTC)));

        let mut other = Consent {
            expires_at: None,
            expires_on: Some("the member's 18th birthday".into()),
            ..consent()
        };
        other.treatment_ended(datetime!(2026-05-01 10:00 UTC));
        assert_eq!(other.ended_at, None, "an event only staff can date");
        for written in ["end of treatment", "Discharge", "discharge from treatment"] {
            assert!(ends_with_treatment(written), "{written}");
        }
        assert!(!ends_with_treatment("end of the school year"));
        assert!(ends_with_treatment("End of treatment."));
        assert!(ends_with_treatment("\"the discharge\" )"));
    }

    #[test]
    fn a_consent_covers_its_recipient_or_class_ignoring_case() {
        let c = consent();
        assert!(c.covers(" treating providers ", None));
        assert!(c.covers("Dr. Okafor", Some("TREATING PROVIDERS")));
        assert!(!c.covers("Dr. Okafor", None));
        assert!(!c.covers("employer", Some("employers")));
    }

    #[test]
    fn the_disclosure_notice_cites_the_regulation() {
        assert!(DISCLOSURE_NOTICE.contains("42 CFR part 2"));
        assert!(DISCLOSURE_NOTICE.ends_with("(see 42 CFR 2.31)."));
    }

    #[test]
    fn only_a_date_or_a_revocation_is_an_end_on_record() {
        let mut c = consent();
        assert!(c.end_is_on_record(), "a date");
        c.expires_on = Some(SHORT_FORM_EXPIRES_ON.into());
        assert!(c.end_is_on_record(), "the member's revocation");
        c.expires_on = Some("discharge from the program".into());
        assert!(!c.end_is_on_record(), "an event only staff can date");
    }
}
