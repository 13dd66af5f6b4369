//! Why a group command was refused: each variant names the state that forbids it.

use thiserror::Error;
use time::OffsetDateTime;

use crate::decider::ErrorKind;
use crate::ids::{GroupId, MemberId, SessionId};
use crate::values::{AttendanceStatus, ValueError};

/// A refused group command.
///
/// Messages carry ids, never names or clinical facts: a `Display` can reach a log, so a
/// member id is never put beside that member's treatment stage or attendance status
/// (those stay in the fields, for the API).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GroupError {
    /// An input value is invalid.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// The stream is empty: no group was formed under this id.
    #[error("no group has been formed under this id")]
    UnknownGroup,
    /// A group was formed twice under one id.
    #[error("group {group} has already been formed")]
    AlreadyFormed {
        /// The group.
        group: GroupId,
    },
    /// The group was closed and accepts nothing more.
    #[error("group {group} is closed")]
    GroupClosed {
        /// The group.
        group: GroupId,
    },
    /// The roster is at capacity.
    #[error("the group is full (capacity {capacity})")]
    GroupFull {
        /// The group's capacity.
        capacity: u8,
    },
    /// The member is on the roster already.
    #[error("member {member} is already on the roster")]
    AlreadyOnRoster {
        /// The member.
        member: MemberId,
    },
    /// Only members in treatment join a (non-alumni) group.
    #[error("only members in treatment may join this group")]
    MemberNotAdmitted {
        /// The member.
        member: MemberId,
    },
    /// Only members in treatment, aftercare or alumni join an alumni group.
    #[error("only members in treatment, in aftercare or alumni may join this alumni group")]
    NotEligibleForAlumniGroup {
        /// The member.
        member: MemberId,
    },
    /// A join or a session dated before the group was formed.
    #[error("{what} cannot be dated before the group was formed")]
    BeforeFormation {
        /// What was refused.
        what: &'static str,
        /// When the group was formed.
        formed_at: OffsetDateTime,
    },
    /// A join or leave dated before the member's previous one (a rejoin before the last
    /// leave, a leave before the join).
    #[error("member {member}'s roster change is dated before their previous one")]
    RosterChangeOutOfOrder {
        /// The member.
        member: MemberId,
    },
    /// A join or leave dated at or before a session whose attendance is recorded, which
    /// would change the roster that session had to list.
    #[error(
        "a roster change cannot be dated at or before session {session}, whose attendance is already recorded"
    )]
    RosterChangeBeforeRecordedSession {
        /// The latest such session.
        session: SessionId,
    },
    /// The member is not on the roster.
    #[error("member {member} is not on the roster")]
    NotOnRoster {
        /// The member.
        member: MemberId,
    },
    /// A session id was used twice.
    #[error("session {session} has already been scheduled")]
    DuplicateSession {
        /// The session.
        session: SessionId,
    },
    /// The group has no session with this id.
    #[error("the group has no session {session}")]
    UnknownSession {
        /// The session.
        session: SessionId,
    },
    /// The session was held already.
    #[error("session {session} has already been held")]
    SessionAlreadyHeld {
        /// The session.
        session: SessionId,
    },
    /// The session was cancelled.
    #[error("session {session} was cancelled")]
    SessionCancelled {
        /// The session.
        session: SessionId,
    },
    /// Attendance can only be corrected for a session that was held.
    #[error("session {session} has not been held")]
    SessionNotHeld {
        /// The session.
        session: SessionId,
    },
    /// Attendance must list exactly the roster.
    #[error(
        "attendance must list exactly the roster: missing {}, not on the roster {}",
        list(.missing),
        list(.unexpected)
    )]
    RosterMismatch {
        /// Roster members without an attendance entry.
        missing: Vec<MemberId>,
        /// Entries for members not on the roster.
        unexpected: Vec<MemberId>,
    },
    /// Attendance lists a member twice.
    #[error("attendance lists member {member} more than once")]
    DuplicateAttendance {
        /// The member.
        member: MemberId,
    },
    /// The member has no attendance recorded at that session.
    #[error("member {member} has no attendance recorded at session {session}")]
    NotInAttendance {
        /// The session.
        session: SessionId,
        /// The member.
        member: MemberId,
    },
    /// A correction to the status already recorded.
    #[error("member {member}'s attendance at session {session} already has the status asked for")]
    NothingToCorrect {
        /// The session.
        session: SessionId,
        /// The member.
        member: MemberId,
        /// The recorded status.
        status: AttendanceStatus,
    },
}

fn list(ids: &[MemberId]) -> String {
    if ids.is_empty() {
        "none".to_owned()
    } else {
        ids.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl GroupError {
    /// Whether this is bad input, a missing thing, or a rule conflict (for the API).
    pub const fn kind(&self) -> ErrorKind {
        match self {
            Self::Value(_) | Self::DuplicateAttendance { .. } => ErrorKind::InvalidInput,
            Self::UnknownGroup | Self::UnknownSession { .. } => ErrorKind::NotFound,
            _ => ErrorKind::Conflict,
        }
    }

    /// Whether the input itself was invalid (`BAD_USER_INPUT`), as opposed to refused by a rule.
    pub const fn is_invalid_input(&self) -> bool {
        matches!(self.kind(), ErrorKind::InvalidInput)
    }
}
