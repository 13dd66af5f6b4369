//! The tenant: every row, event and token belongs to one clinic.

use std::fmt;

/// A clinic's identifier (the tenant key). Non-empty, at most 64 characters of
/// `[a-z0-9_-]`, so it is safe in logs, URLs and notification payloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClinicId(String);

/// Why a clinic id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a clinic id is 1 to 64 characters of lowercase letters, digits, '-' or '_'")]
pub struct InvalidClinicId;

impl ClinicId {
    /// Parses and validates a clinic id.
    pub fn parse(raw: &str) -> Result<Self, InvalidClinicId> {
        let valid = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidClinicId)
        }
    }

    /// The id as stored in the `clinic` columns.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClinicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clinic_ids_are_short_lowercase_slugs() {
        assert!(ClinicId::parse("north-clinic_2").is_ok());
        assert_eq!(ClinicId::parse(""), Err(InvalidClinicId));
        assert_eq!(ClinicId::parse("North"), Err(InvalidClinicId));
        assert_eq!(ClinicId::parse("a b"), Err(InvalidClinicId));
        assert_eq!(ClinicId::parse(&"a".repeat(65)), Err(InvalidClinicId));
    }
}
