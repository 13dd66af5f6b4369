//! Group therapy, stream `group-<uuid>`: formation, roster, sessions and attendance.
//!
//! Start with [`decide`] (the rules), then [`GroupState::evolve`] (what the events mean).

mod command;
mod decide;
mod error;
mod event;
mod state;

pub use command::{
    CancelSession, CloseGroup, CorrectAttendance, FormGroup, GroupCommand, JoinGroup, LeaveGroup,
    RecordSession, ScheduleSession,
};
pub use decide::decide;
pub use error::GroupError;
pub use event::{
    Attendance, AttendanceCorrected, GroupClosed, GroupEvent, GroupFormed, MemberJoined,
    MemberLeft, SessionCancelled, SessionHeld, SessionScheduled,
};
pub use state::{GroupProfile, GroupState, Membership, Session};

use crate::decider::Decider;

/// The state after one more event (the free-function form of [`GroupState::evolve`]).
pub fn evolve(state: GroupState, event: &GroupEvent) -> GroupState {
    state.evolve(event)
}

/// The group stream's rules as a [`Decider`], for generic command handling and tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupDecider;

impl Decider for GroupDecider {
    type State = GroupState;
    type Command = GroupCommand;
    type Event = GroupEvent;
    type Error = GroupError;

    fn decide(state: &GroupState, command: GroupCommand) -> Result<Vec<GroupEvent>, GroupError> {
        decide(state, command)
    }

    fn evolve(state: GroupState, event: &GroupEvent) -> GroupState {
        state.evolve(event)
    }
}
