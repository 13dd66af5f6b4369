//! Validated values: every value that has a rule is a type with a parsing constructor,
//! so a command holding one is valid by construction.
//!
//! [`ValueError`] is the one validation error. Its messages never repeat the rejected
//! value: a `Display` can reach a log, and the value may be a name or a phone number.

use thiserror::Error;

/// Why a value was rejected. Messages name the field and the rule, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValueError {
    /// A required text was empty or only whitespace.
    #[error("{field} must not be empty")]
    Empty {
        /// Which field, in words.
        field: &'static str,
    },
    /// A text was longer than its limit.
    #[error("{field} must be at most {max} characters")]
    TooLong {
        /// Which field, in words.
        field: &'static str,
        /// The limit in characters.
        max: usize,
    },
    /// A text held control characters (line breaks, escapes) or bidirectional overrides.
    #[error("{field} must not contain control characters or bidirectional overrides")]
    ControlCharacters {
        /// Which field, in words.
        field: &'static str,
    },
    /// A number was outside its range.
    #[error("{field} must be between {min} and {max}")]
    OutOfRange {
        /// Which field, in words.
        field: &'static str,
        /// The smallest allowed value.
        min: i64,
        /// The largest allowed value.
        max: i64,
    },
    /// An email address did not have the shape `local@domain.tld`.
    #[error("email address is not valid")]
    InvalidEmail,
    /// A phone number did not have 7 to 15 digits, or had other characters.
    #[error("phone number must have 7 to 15 digits and only + ( ) - . or spaces besides")]
    InvalidPhone,
    /// An id was not a UUID (or a stream id not `<category>-<uuid>`).
    #[error("not a valid {kind} id")]
    InvalidId {
        /// Which kind of id.
        kind: &'static str,
    },
    /// A text that stays readable after the member's erasure (an erasure's reason) names the
    /// member: a word of their name, their email address or their phone number.
    #[error(
        "{field} must not name the member or give their contact details ({by} is in it): it \
         stays readable after the erasure"
    )]
    NamesTheMember {
        /// Which field, in words.
        field: &'static str,
        /// What of the member's identity it holds, in words (never the text itself).
        by: &'static str,
    },
    /// An enumerated value was not one of its names.
    #[error("unknown {kind}")]
    UnknownVariant {
        /// Which enumeration, in words.
        kind: &'static str,
    },
    /// The follow-up schedule was not a list of distinct day offsets in range.
    #[error("follow-up offsets must be distinct whole days from 1 to {max}")]
    InvalidFollowUpOffsets {
        /// The largest allowed offset in days.
        max: u16,
    },
    /// A time computed from the input (a follow-up's due date, a window's start) falls
    /// outside the calendar the service can represent (years 1 to 9999, UTC).
    #[error("{field} falls outside the supported calendar")]
    TimeOutOfRange {
        /// Which time, in words.
        field: &'static str,
    },
    /// A consent would expire before it was signed.
    #[error("a consent must expire after it is signed")]
    ExpiryBeforeSigning,
    /// A written consent states when it ends (42 CFR 2.31(a)(6)): a date, an event or a
    /// condition ("none" only where the rule allows it, for treatment, payment and health
    /// care operations). Without one, the record would hold a consent in force for good.
    #[error(
        "a consent needs its expiry: `expiresAt` (a date) or `expiresOn` (an event or \
         condition; \"none\" only for treatment, payment and health care operations)"
    )]
    ConsentWithoutExpiry,
    /// A revocation would be received before (or as) the consent was signed: it would void the
    /// consent from the start, and with it disclosures made under it while it was in force.
    #[error("a revocation must be received after the consent was signed")]
    RevocationBeforeSigning,
}

/// Declares a closed set of names that are stored as snake_case text.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($kind:literal) {
            $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value in declaration order, for exhaustive reports and tests.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stable snake_case name, as stored in event payloads.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            /// Parses the snake_case name.
            pub fn parse(text: &str) -> Result<Self, $crate::values::ValueError> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    _ => Err($crate::values::ValueError::UnknownVariant { kind: $kind }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::values::ValueError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }
    };
}

mod care;
mod check_in;
mod consent;
mod contact;
mod measure;
mod text;
mod therapy;

pub use care::{
    AftercarePlan, DischargeReason, FollowUpOutcome, FollowUpStatus, LevelOfCare, ReferralSource,
    Stage,
};
pub use check_in::{CheckInChannel, CheckInStatus};
pub use consent::{ConsentKind, ConsentScope};
pub use contact::{Email, PersonName, Phone};
pub use measure::{Capacity, Craving, Mood, SessionMinutes};
pub use text::Text;
pub use therapy::{AttendanceStatus, GroupModel, SessionStatus};
