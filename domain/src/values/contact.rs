//! A member's name and contact details: personal data, validated at the edge and
//! stored as plain strings in events (so infra can encrypt them per member).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ValueError;

/// A person's name: trimmed, not empty, at most 200 characters, one line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);

impl PersonName {
    /// The longest name accepted, in characters.
    pub const MAX: usize = 200;

    /// Validates a name.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ValueError::Empty { field: "name" });
        }
        if trimmed.chars().count() > Self::MAX {
            return Err(ValueError::TooLong {
                field: "name",
                max: Self::MAX,
            });
        }
        // One line: control characters, and Unicode's line and paragraph separators (not
        // control characters, but line breaks all the same).
        if trimmed.chars().any(|c| {
            c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}')
                || super::text::reorders_display(c)
        }) {
            return Err(ValueError::ControlCharacters { field: "name" });
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PersonName {
    type Error = ValueError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<PersonName> for String {
    fn from(name: PersonName) -> Self {
        name.0
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address of the shape `local@domain.tld`, without spaces, at most 254
/// characters (RFC 5321's path limit), with a local part of at most 64.
///
/// Deliberately not a full RFC 5322 parser: the outbox's SMTP server is the final judge;
/// this catches typos at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Validates an email address.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ValueError::Empty { field: "email" });
        }
        if trimmed.len() > 254 || !Self::well_formed(trimmed) {
            return Err(ValueError::InvalidEmail);
        }
        Ok(Self(trimmed.to_owned()))
    }

    fn well_formed(text: &str) -> bool {
        let Some((local, domain)) = text.split_once('@') else {
            return false;
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(|c| {
                c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c) || !c.is_ascii()
            });
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii())
            })
            && labels.last().is_some_and(|tld| {
                tld.chars().count() >= 2 && !tld.chars().all(|c| c.is_ascii_digit())
            });
        local_ok && domain_ok && !text.chars().any(|c| c.is_whitespace() || c.is_control())
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = ValueError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number: 7 to 15 digits (E.164's maximum), an optional leading `+`, and
/// the usual separators (spaces, `-`, `.`, parentheses). Kept as typed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    /// Validates a phone number.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ValueError::Empty {
                field: "phone number",
            });
        }
        let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
        let digits = body.chars().filter(char::is_ascii_digit).count();
        let allowed = body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'));
        if !allowed || !(7..=15).contains(&digits) {
            return Err(ValueError::InvalidPhone);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The number as typed (trimmed).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Phone {
    type Error = ValueError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<Phone> for String {
    fn from(phone: Phone) -> Self {
        phone.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_name_is_trimmed() {
        assert_eq!(PersonName::parse("  Ann Lee ").unwrap().as_str(), "Ann Lee");
    }

    #[test]
    fn a_name_that_would_display_reordered_is_refused() {
        assert_eq!(
            PersonName::parse("Ann \u{202E}eeL"),
            Err(ValueError::ControlCharacters { field: "name" })
        );
        assert!(PersonName::parse("Miriam כהן").is_ok());
    }

    #[test]
    fn a_name_on_two_lines_is_refused() {
        for two_lines in [
            "Ann\nLee",
            "Ann\u{2028}Lee",
            "Ann\u{2029}Lee",
            "Ann\u{85}Lee",
        ] {
            assert_eq!(
                PersonName::parse(two_lines),
                Err(ValueError::ControlCharacters { field: "name" }),
                "{two_lines:?}"
            );
        }
    }

    #[test]
    fn an_empty_name_is_refused() {
        assert_eq!(
            PersonName::parse(" \t ").unwrap_err().to_string(),
            "name must not be empty"
        );
    }

    #[test]
    fn a_name_of_two_hundred_characters_is_accepted_and_longer_is_refused() {
        assert!(PersonName::parse(&"a".repeat(200)).is_ok());
        assert_eq!(
            PersonName::parse(&"a".repeat(201)),
            Err(ValueError::TooLong {
                field: "name",
                max: 200
            })
        );
    }

    #[test]
    fn sensible_email_addresses_are_accepted() {
        for ok in [
            "ann@example.org",
            "a.b+tag@mail.example.co.uk",
            "x_y@sub-domain.example.com",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn malformed_email_addresses_are_refused_without_echoing_them() {
        for bad in [
            "ann",
            "ann@",
            "@example.org",
            "ann@example",
            "ann@@example.org",
            "ann smith@example.org",
            "ann@example..org",
            ".ann@example.org",
            "ann@-example.org",
            "ann@example.c",
            "ann@1.2.3.4",
        ] {
            let err = Email::parse(bad).unwrap_err();
            assert_eq!(err, ValueError::InvalidEmail, "{bad}");
            assert!(!err.to_string().contains(bad));
        }
    }

    #[test]
    fn phone_numbers_need_seven_to_fifteen_digits() {
        assert!(Phone::parse("+1 (555) 010-2030").is_ok());
        assert!(Phone::parse("555.0102").is_ok());
        assert_eq!(Phone::parse("12345"), Err(ValueError::InvalidPhone));
        assert_eq!(Phone::parse("call me maybe"), Err(ValueError::InvalidPhone));
        assert_eq!(
            Phone::parse("+1234567890123456"),
            Err(ValueError::InvalidPhone)
        );
    }

    #[test]
    fn a_name_is_validated_when_deserialized() {
        assert!(serde_json::from_str::<PersonName>("\"  \"").is_err());
        assert_eq!(
            serde_json::from_str::<PersonName>("\"Ann\"")
                .unwrap()
                .as_str(),
            "Ann"
        );
    }
}
