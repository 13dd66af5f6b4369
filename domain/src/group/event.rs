//! The facts recorded in a group's stream (`group-<uuid>`), spelled as in DOMAIN.md.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::ids::{GroupId, MemberId, SessionId};
use crate::payload::{decode, stored_events, DecodeError};
use crate::upcast::SessionHeldV1;
use crate::values::{AttendanceStatus, Capacity, GroupModel, SessionMinutes};

/// A group was formed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupFormed {
    /// The group (also in the stream id; kept here so the payload stands alone).
    pub group_id: GroupId,
    /// The group's name (not personal: it names the group, e.g. "Tuesday relapse prevention").
    pub name: String,
    /// Its therapeutic model.
    pub model: GroupModel,
    /// The facilitating staff member's `sub`; only they (and clinicians, admins) record sessions.
    #[serde(default)]
    pub facilitator: Option<String>,
    /// How many members it holds.
    pub capacity: Capacity,
    /// The weekly schedule in words ("Tuesdays and Thursdays 18:00-19:30").
    #[serde(default)]
    pub schedule: Option<String>,
    /// Whether it is marked for alumni (aftercare and alumni members may join).
    pub alumni: bool,
    /// Whether it meets online rather than in person.
    pub online: bool,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub formed_at: OffsetDateTime,
}

/// A member joined the roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberJoined {
    /// The member.
    pub member_id: MemberId,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
}

/// A member left the roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberLeft {
    /// The member.
    pub member_id: MemberId,
    /// Why. Personal data of `member_id`.
    pub reason: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub left_at: OffsetDateTime,
}

/// A session was scheduled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionScheduled {
    /// The session.
    pub session_id: SessionId,
    /// When it starts.
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    /// Its planned topic.
    pub topic: String,
}

/// One roster member's attendance at a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attendance {
    /// The member.
    pub member_id: MemberId,
    /// How they attended.
    pub status: AttendanceStatus,
}

/// A session was held; attendance lists every member on the roster at that time.
///
/// Schema v2. v1 listed only the members present (see [`SessionHeldV1`]); an event read
/// from v1 has `recorded_presence_only` set, and folding it counts the members on the
/// roster at `held_at` whom it does not list as absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionHeld {
    /// The session (scheduled before, or recorded directly).
    pub session_id: SessionId,
    /// When it was held.
    #[serde(with = "time::serde::rfc3339")]
    pub held_at: OffsetDateTime,
    /// What it covered.
    pub topic: String,
    /// How long it lasted.
    pub duration_minutes: SessionMinutes,
    /// Every roster member and how they attended.
    pub attendance: Vec<Attendance>,
    /// Set only by the v1 upcaster: `attendance` lists the members present and nobody
    /// else, so roster members it leaves out were absent. Never written by `decide`;
    /// absent from v2 payloads (read as `false`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub recorded_presence_only: bool,
}

const fn is_false(value: &bool) -> bool {
    !*value
}

/// A scheduled session was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCancelled {
    /// The session.
    pub session_id: SessionId,
    /// Why (group-level, e.g. "facilitator ill").
    pub reason: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub cancelled_at: OffsetDateTime,
}

/// A recorded attendance was corrected; the original stays in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendanceCorrected {
    /// The session.
    pub session_id: SessionId,
    /// The member.
    pub member_id: MemberId,
    /// The status recorded before.
    pub from: AttendanceStatus,
    /// The corrected status.
    pub to: AttendanceStatus,
    /// Why. Personal data of `member_id` (may say why they were away).
    pub reason: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub corrected_at: OffsetDateTime,
}

/// The group was closed; it accepts nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupClosed {
    /// Why (group-level).
    pub reason: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub closed_at: OffsetDateTime,
}

/// Every fact of a group stream.
///
/// Personal data in these events belongs to the member named in the event
/// ([`GroupEvent::data_subject`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is its payload struct, documented above
pub enum GroupEvent {
    GroupFormed(GroupFormed),
    MemberJoined(MemberJoined),
    MemberLeft(MemberLeft),
    SessionScheduled(SessionScheduled),
    SessionHeld(SessionHeld),
    SessionCancelled(SessionCancelled),
    AttendanceCorrected(AttendanceCorrected),
    GroupClosed(GroupClosed),
}

stored_events!(GroupEvent, "group", {
    GroupFormed => 1,
    MemberJoined => 1,
    MemberLeft => 1,
    SessionScheduled => 1,
    SessionHeld => 2,
    SessionCancelled => 1,
    AttendanceCorrected => 1,
    GroupClosed => 1,
});

impl GroupEvent {
    /// Reads a stored row back, upcasting `SessionHeld` v1 to v2.
    pub fn from_stored(
        event_type: &str,
        schema_version: u16,
        data: Value,
    ) -> Result<Self, DecodeError> {
        let current = Self::current_schema_version(event_type).ok_or_else(|| {
            DecodeError::UnknownEventType {
                category: "group",
                event_type: event_type.to_owned(),
            }
        })?;
        match (event_type, schema_version) {
            (_, version) if version == current => Self::decode_current(event_type, data),
            ("SessionHeld", 1) => decode::<SessionHeldV1>("SessionHeld", 1, data)
                .map(|v1| Self::SessionHeld(v1.into())),
            _ => Err(DecodeError::UnsupportedVersion {
                event_type: Self::static_type_name(event_type),
                schema_version,
                current,
            }),
        }
    }

    /// The crypto-shredding boundary: the top-level `data` fields of `event_type` that
    /// are personal data of the event's member ([`GroupEvent::data_subject`]). Infra
    /// encrypts them with that member's key; every one is a string.
    pub fn personal_fields(event_type: &str) -> &'static [&'static str] {
        match event_type {
            "MemberLeft" | "AttendanceCorrected" => &["reason"],
            _ => &[],
        }
    }

    /// The member whose personal data this event holds, if any: whose key encrypts
    /// its [`GroupEvent::personal_fields`].
    pub const fn data_subject(&self) -> Option<MemberId> {
        match self {
            Self::MemberLeft(e) => Some(e.member_id),
            Self::AttendanceCorrected(e) => Some(e.member_id),
            _ => None,
        }
    }

    /// When the fact happened in the clinic's world (not when it was recorded).
    pub const fn occurred_at(&self) -> OffsetDateTime {
        match self {
            Self::GroupFormed(e) => e.formed_at,
            Self::MemberJoined(e) => e.joined_at,
            Self::MemberLeft(e) => e.left_at,
            Self::SessionScheduled(e) => e.starts_at,
            Self::SessionHeld(e) => e.held_at,
            Self::SessionCancelled(e) => e.cancelled_at,
            Self::AttendanceCorrected(e) => e.corrected_at,
            Self::GroupClosed(e) => e.closed_at,
        }
    }
}
