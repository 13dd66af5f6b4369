//! Stored payloads: the compatibility boundary between the domain's event types and
//! the rows of the event store.
//!
//! The store keeps three columns per event: `type` (a stable external name such as
//! `"SessionHeld"`, never renamed once written), `schema_version` and `data` (the
//! variant's own fields as JSON, without a tag). [`StoredEvent`] is what infra calls;
//! old schema versions are read through typed upcasters (see [`crate::upcast`]), and old
//! rows are never rewritten.
//!
//! # The crypto-shredding boundary
//! [`StoredEvent::personal_fields`] names, per event type, the top-level fields of `data`
//! that are personal data of the member. Infra encrypts exactly those with the member's
//! key before appending, and decrypts them before [`StoredEvent::from_stored`]; erasing
//! a member destroys the key, so the fields become unreadable while the log (and its hash
//! chain) stays intact. Every such field is a JSON string or null, so infra can swap it
//! for a ciphertext string (or, after erasure, a placeholder string) and still decode.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

/// Why a stored event could not be read back.
///
/// Never carries the payload or serde's message: both can contain personal data.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The `type` column names no event of this stream kind.
    #[error("unknown {category} event type {event_type:?}")]
    UnknownEventType {
        /// The stream category (`member`, `group`).
        category: &'static str,
        /// The stored type name.
        event_type: String,
    },
    /// No upcaster reads this schema version (older than supported, or newer than this build).
    #[error(
        "{event_type} schema version {schema_version} is not supported (current is {current})"
    )]
    UnsupportedVersion {
        /// The stored type name.
        event_type: &'static str,
        /// The stored schema version.
        schema_version: u16,
        /// The version this build writes.
        current: u16,
    },
    /// The data does not match the schema its version promises.
    #[error("{event_type} v{schema_version} data does not match its schema")]
    InvalidData {
        /// The stored type name.
        event_type: &'static str,
        /// The stored schema version.
        schema_version: u16,
    },
}

/// What the event store needs from a stream kind's event enum.
///
/// Implemented by [`crate::member::MemberEvent`] and [`crate::group::GroupEvent`], so the
/// store can be written once, generically.
pub trait StoredEvent: Sized {
    /// The stream category, the prefix of stream ids (`member`, `group`).
    const CATEGORY: &'static str;

    /// The stable external name of this event, the `type` column.
    fn event_type(&self) -> &'static str;

    /// The schema version this build writes for this event type.
    fn schema_version(&self) -> u16;

    /// The variant's own fields as JSON (no tag), the `data` column.
    fn to_data(&self) -> Value;

    /// Reads a stored row back, upcasting older schema versions.
    fn from_stored(event_type: &str, schema_version: u16, data: Value)
        -> Result<Self, DecodeError>;

    /// The top-level fields of `data` that are personal data, to be encrypted per member.
    fn personal_fields(event_type: &str) -> &'static [&'static str];

    /// The member whose key seals this event's personal fields, when that is not the
    /// stream's own member: group events name the member; member events return `None`.
    fn data_subject(&self) -> Option<uuid::Uuid> {
        None
    }
}

/// Serializes an event struct into its `data` JSON.
pub(crate) fn encode<T: Serialize>(event: &T) -> Value {
    // Event structs hold only strings, numbers, booleans, uuids, timestamps and
    // vectors of those: serde_json cannot fail on them (it fails only on maps with
    // non-string keys, which no event has).
    #[allow(clippy::expect_used)]
    serde_json::to_value(event).expect("event payloads always serialize to JSON")
}

/// Deserializes a payload of a known type and version.
pub(crate) fn decode<T: DeserializeOwned>(
    event_type: &'static str,
    schema_version: u16,
    data: Value,
) -> Result<T, DecodeError> {
    serde_json::from_value(data).map_err(|_| DecodeError::InvalidData {
        event_type,
        schema_version,
    })
}

/// Implements the store-facing methods of an event enum whose variants are named
/// exactly like their payload structs (the stored type names).
macro_rules! stored_events {
    ($enum:ident, $category:literal, { $($variant:ident => $version:literal),+ $(,)? }) => {
        impl $enum {
            /// Every stored type name of this stream kind.
            pub const EVENT_TYPES: &'static [&'static str] = &[$(stringify!($variant)),+];

            /// The stable external name of this event (the `type` column); never renamed.
            pub const fn event_type(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($variant)),+
                }
            }

            /// The schema version this build writes for this event.
            pub const fn schema_version(&self) -> u16 {
                match self {
                    $(Self::$variant(_) => $version),+
                }
            }

            /// The schema version this build writes for a type name, if it knows the name.
            pub fn current_schema_version(event_type: &str) -> Option<u16> {
                match event_type {
                    $(stringify!($variant) => Some($version),)+
                    _ => None,
                }
            }

            /// The variant's own fields as JSON, without a tag (the `data` column).
            pub fn to_data(&self) -> serde_json::Value {
                match self {
                    $(Self::$variant(event) => $crate::payload::encode(event)),+
                }
            }

            /// Decodes the current schema version of a known type name.
            fn decode_current(
                event_type: &str,
                data: serde_json::Value,
            ) -> Result<Self, $crate::payload::DecodeError> {
                match event_type {
                    $(stringify!($variant) => $crate::payload::decode(
                        stringify!($variant),
                        $version,
                        data,
                    ).map(Self::$variant),)+
                    _ => Err($crate::payload::DecodeError::UnknownEventType {
                        category: $category,
                        event_type: event_type.to_owned(),
                    }),
                }
            }

            /// The `&'static` spelling of a known type name (for error values).
            fn static_type_name(event_type: &str) -> &'static str {
                match event_type {
                    $(stringify!($variant) => stringify!($variant),)+
                    _ => "unknown",
                }
            }
        }

        $(
            impl From<$variant> for $enum {
                fn from(event: $variant) -> Self {
                    Self::$variant(event)
                }
            }
        )+

        impl $crate::payload::StoredEvent for $enum {
            const CATEGORY: &'static str = $category;

            fn event_type(&self) -> &'static str {
                $enum::event_type(self)
            }

            fn schema_version(&self) -> u16 {
                $enum::schema_version(self)
            }

            fn to_data(&self) -> serde_json::Value {
                $enum::to_data(self)
            }

            fn from_stored(
                event_type: &str,
                schema_version: u16,
                data: serde_json::Value,
            ) -> Result<Self, $crate::payload::DecodeError> {
                $enum::from_stored(event_type, schema_version, data)
            }

            fn personal_fields(event_type: &str) -> &'static [&'static str] {
                $enum::personal_fields(event_type)
            }

            fn data_subject(&self) -> Option<uuid::Uuid> {
                $enum::data_subject(self).map(|member| member.as_uuid())
            }
        }
    };
}

pub(crate) use stored_events;

#[cfg(test)]
mod tests;
