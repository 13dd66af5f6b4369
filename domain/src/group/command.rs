//! What staff ask of a group's stream. Each command carries its own time; values arrive
//! validated; facts from other streams (a member's stage) arrive in the command.

use time::OffsetDateTime;

use crate::ids::{GroupId, MemberId, SessionId};
use crate::values::{AttendanceStatus, Capacity, GroupModel, SessionMinutes, Stage, Text};

use super::event::Attendance;

/// Form a group; starts the group's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormGroup {
    /// The new group's id (chosen by the shell).
    pub group: GroupId,
    /// Its name.
    pub name: Text,
    /// Its model.
    pub model: GroupModel,
    /// The facilitating staff member's `sub`, if assigned.
    pub facilitator: Option<Text>,
    /// Its capacity (default 12).
    pub capacity: Capacity,
    /// The weekly schedule in words, if set.
    pub schedule: Option<Text>,
    /// Marked for alumni: aftercare and alumni members may join.
    pub alumni: bool,
    /// Meets online.
    pub online: bool,
    /// When.
    pub at: OffsetDateTime,
}

/// Put a member on the roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroup {
    /// The member.
    pub member: MemberId,
    /// The member's eligibility, read by the shell from the member's stream just before the
    /// group's append ([`crate::member::MemberState::group_eligibility`]): their stage, or
    /// `None` if the member is unknown or erased. Two streams are not appended to atomically,
    /// so a discharge committed between that read and the join leaves a member on a roster
    /// they no longer belong on; the scheduler takes such members off (`LeaveGroup`) at its
    /// next tick.
    pub member_stage: Option<Stage>,
    /// When.
    pub at: OffsetDateTime,
}

/// Take a member off the roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroup {
    /// The member.
    pub member: MemberId,
    /// Why.
    pub reason: Text,
    /// When.
    pub at: OffsetDateTime,
}

/// Plan a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleSession {
    /// The new session's id.
    pub session: SessionId,
    /// When it starts.
    pub starts_at: OffsetDateTime,
    /// Its planned topic.
    pub topic: Text,
    /// When it was scheduled.
    pub at: OffsetDateTime,
}

/// Record a held session (scheduled before, or not) with attendance for exactly the
/// roster at `held_at`, each member once (a session recorded late lists who was on the
/// roster then, not now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSession {
    /// The session (a scheduled one, or a new id for an unscheduled session).
    pub session: SessionId,
    /// The session was scheduled in this group: refused (`UnknownSession`) if this group
    /// scheduled no such session, so an id of another group's session is never taken over.
    pub planned: bool,
    /// When it was held.
    pub held_at: OffsetDateTime,
    /// What it covered.
    pub topic: Text,
    /// How long it lasted ([`SessionMinutes::DEFAULT`] when not asked).
    pub duration: SessionMinutes,
    /// Every roster member and how they attended.
    pub attendance: Vec<Attendance>,
}

/// Cancel a scheduled session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelSession {
    /// The session.
    pub session: SessionId,
    /// Why.
    pub reason: Text,
    /// When.
    pub at: OffsetDateTime,
}

/// Correct one member's recorded attendance at a held session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrectAttendance {
    /// The session.
    pub session: SessionId,
    /// The member.
    pub member: MemberId,
    /// The correct status.
    pub to: AttendanceStatus,
    /// Why.
    pub reason: Text,
    /// When.
    pub at: OffsetDateTime,
}

/// Close the group for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseGroup {
    /// Why.
    pub reason: Text,
    /// When.
    pub at: OffsetDateTime,
}

/// Every command of a group stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is its command struct, documented above
pub enum GroupCommand {
    FormGroup(FormGroup),
    JoinGroup(JoinGroup),
    LeaveGroup(LeaveGroup),
    ScheduleSession(ScheduleSession),
    RecordSession(RecordSession),
    CancelSession(CancelSession),
    CorrectAttendance(CorrectAttendance),
    CloseGroup(CloseGroup),
}

macro_rules! command_from {
    ($($variant:ident),+ $(,)?) => {
        $(
            impl From<$variant> for GroupCommand {
                fn from(command: $variant) -> Self {
                    Self::$variant(command)
                }
            }
        )+

        impl GroupCommand {
            /// The command's name, for logs and traces.
            pub const fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($variant)),+
                }
            }
        }
    };
}

command_from!(
    FormGroup,
    JoinGroup,
    LeaveGroup,
    ScheduleSession,
    RecordSession,
    CancelSession,
    CorrectAttendance,
    CloseGroup,
);
