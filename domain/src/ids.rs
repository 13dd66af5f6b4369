//! Identifiers: one newtype per kind of thing, so a session id can never be passed
//! where a member id is expected.
//!
//! Ids are UUIDs chosen by the shell (or derived deterministically, see
//! [`crate::aftercare::follow_up_id`]); the domain never generates random ids.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::ValueError;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID chosen by the caller.
            pub const fn new(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// Parses the textual UUID form (as used in the API and stored payloads).
            pub fn parse(text: &str) -> Result<Self, ValueError> {
                Uuid::parse_str(text.trim())
                    .map(Self)
                    .map_err(|_| ValueError::InvalidId { kind: $kind })
            }

            /// The underlying UUID, for storage columns.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ValueError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }
    };
}

id_type!(
    /// A person in the pipeline, from referral to alumni; names the stream `member-<uuid>`.
    MemberId,
    "member"
);
id_type!(
    /// A therapy group; names the stream `group-<uuid>`.
    GroupId,
    "group"
);
id_type!(
    /// One meeting of a group (scheduled, held or cancelled).
    SessionId,
    "session"
);
id_type!(
    /// One scheduled check-in of a member.
    CheckInId,
    "check-in"
);
id_type!(
    /// One alumni follow-up (derived from the member, the treatment episode and the day offset).
    FollowUpId,
    "follow-up"
);
id_type!(
    /// One 42 CFR Part 2 written consent.
    ConsentId,
    "consent"
);
id_type!(
    /// One treatment-plan goal.
    GoalId,
    "goal"
);
id_type!(
    /// One disclosure of a member's records to an outside recipient.
    DisclosureId,
    "disclosure"
);

/// The stream category of members: stream ids are `member-<uuid>`.
pub const MEMBER_CATEGORY: &str = "member";
/// The stream category of groups: stream ids are `group-<uuid>`.
pub const GROUP_CATEGORY: &str = "group";

fn stream_uuid(stream_id: &str, category: &str) -> Option<Uuid> {
    let rest = stream_id.strip_prefix(category)?.strip_prefix('-')?;
    Uuid::parse_str(rest).ok()
}

impl MemberId {
    /// The event stream holding this member's events: `member-<uuid>`.
    pub fn stream_id(&self) -> String {
        format!("{MEMBER_CATEGORY}-{self}")
    }

    /// Reads a member id back from a stream id such as `member-<uuid>`.
    pub fn from_stream_id(stream_id: &str) -> Result<Self, ValueError> {
        stream_uuid(stream_id, MEMBER_CATEGORY)
            .map(Self)
            .ok_or(ValueError::InvalidId { kind: "member" })
    }
}

impl GroupId {
    /// The event stream holding this group's events: `group-<uuid>`.
    pub fn stream_id(&self) -> String {
        format!("{GROUP_CATEGORY}-{self}")
    }

    /// Reads a group id back from a stream id such as `group-<uuid>`.
    pub fn from_stream_id(stream_id: &str) -> Result<Self, ValueError> {
        stream_uuid(stream_id, GROUP_CATEGORY)
            .map(Self)
            .ok_or(ValueError::InvalidId { kind: "group" })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_member_stream_id_round_trips() {
        let id = MemberId::parse("0b6f4b1e-8f9a-4c39-9d55-3f7c1a2b9e10").unwrap();
        assert_eq!(
            id.stream_id(),
            "member-0b6f4b1e-8f9a-4c39-9d55-3f7c1a2b9e10"
        );
        assert_eq!(MemberId::from_stream_id(&id.stream_id()).unwrap(), id);
    }

    #[test]
    fn a_group_stream_id_is_not_a_member_stream_id() {
        let id = GroupId::new(Uuid::from_u128(7));
        assert_eq!(
            MemberId::from_stream_id(&id.stream_id()),
            Err(ValueError::InvalidId { kind: "member" })
        );
        assert_eq!(GroupId::from_stream_id(&id.stream_id()).unwrap(), id);
    }

    #[test]
    fn an_id_that_is_not_a_uuid_is_refused_without_echoing_it() {
        let err = SessionId::parse("Jane Doe").unwrap_err();
        assert_eq!(err.to_string(), "not a valid session id");
    }

    #[test]
    fn ids_serialize_as_plain_uuid_strings() {
        let id = ConsentId::new(Uuid::from_u128(1));
        assert_eq!(
            serde_json::to_value(id).unwrap(),
            serde_json::json!("00000000-0000-0000-0000-000000000001")
        );
    }
}
