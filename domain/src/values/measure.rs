//! Bounded numbers: mood, craving, group capacity, session length.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ValueError;

macro_rules! bounded {
    ($(#[$meta:meta])* $name:ident($repr:ty), $field:literal, $min:expr, $max:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "i64", into = "i64")]
        pub struct $name($repr);

        impl $name {
            /// The smallest allowed value.
            pub const MIN: $repr = $min;
            /// The largest allowed value.
            pub const MAX: $repr = $max;

            /// Validates the range.
            pub fn new(value: i64) -> Result<Self, ValueError> {
                if (i64::from(Self::MIN)..=i64::from(Self::MAX)).contains(&value) {
                    <$repr>::try_from(value).map(Self).map_err(|_| Self::out_of_range())
                } else {
                    Err(Self::out_of_range())
                }
            }

            fn out_of_range() -> ValueError {
                ValueError::OutOfRange {
                    field: $field,
                    min: i64::from(Self::MIN),
                    max: i64::from(Self::MAX),
                }
            }

            /// The number.
            pub const fn get(self) -> $repr {
                self.0
            }
        }

        impl TryFrom<i64> for $name {
            type Error = ValueError;

            fn try_from(value: i64) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$name> for i64 {
            fn from(value: $name) -> Self {
                i64::from(value.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

bounded!(
    /// Self-rated mood at a check-in, 1 (very low) to 5 (very good).
    Mood(u8), "mood", 1, 5
);
bounded!(
    /// Self-rated craving at a check-in, 0 (none) to 10 (overwhelming).
    Craving(u8), "craving", 0, 10
);
bounded!(
    /// How many members a group holds, 1 to 50 (default 12, a typical process group).
    Capacity(u8), "capacity", 1, 50
);
bounded!(
    /// How long a session lasted, in minutes (1 to 12 hours).
    SessionMinutes(u16), "session duration in minutes", 1, 720
);

impl Default for Capacity {
    fn default() -> Self {
        Self(12)
    }
}

impl SessionMinutes {
    /// The usual length of a group session, used when none is given.
    pub const DEFAULT: Self = Self(90);
}

impl Default for SessionMinutes {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn mood_is_between_one_and_five() {
        assert!(Mood::new(1).is_ok() && Mood::new(5).is_ok());
        assert_eq!(
            Mood::new(0).unwrap_err().to_string(),
            "mood must be between 1 and 5"
        );
        assert!(Mood::new(6).is_err());
    }

    #[test]
    fn craving_is_between_zero_and_ten() {
        assert!(Craving::new(0).is_ok() && Craving::new(10).is_ok());
        assert_eq!(
            Craving::new(11).unwrap_err().to_string(),
            "craving must be between 0 and 10"
        );
        assert!(Craving::new(-1).is_err());
    }

    #[test]
    fn capacity_is_between_one_and_fifty_and_defaults_to_twelve() {
        assert_eq!(Capacity::default().get(), 12);
        assert!(Capacity::new(1).is_ok() && Capacity::new(50).is_ok());
        assert!(Capacity::new(0).is_err() && Capacity::new(51).is_err());
    }

    #[test]
    fn bounded_numbers_are_validated_when_deserialized() {
        assert!(serde_json::from_str::<Mood>("9").is_err());
        assert_eq!(serde_json::from_str::<Craving>("4").unwrap().get(), 4);
        assert_eq!(serde_json::to_string(&Capacity::default()).unwrap(), "12");
    }
}
