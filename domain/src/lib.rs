//! The clinic's rules as pure deciders: the functional core of an event-sourced
//! operations service for addiction treatment centres.
//!
//! Two kinds of stream, each with events, a state, commands, errors and a decider:
//! - [`member`]: the pipeline from referral to alumni ([`MemberEvent`], [`MemberState`],
//!   [`MemberCommand`], [`MemberError`], [`member::decide`]);
//! - [`group`]: group therapy ([`GroupEvent`], [`GroupState`], [`GroupCommand`],
//!   [`GroupError`], [`group::decide`]).
//!
//! Around them: [`ids`] and [`values`] (validated newtypes, one [`ValueError`]),
//! [`consent`] (42 CFR Part 2), [`aftercare`] (follow-up schedules), [`engagement`] and
//! [`timeline`] (derived views for projections and time travel), [`payload`] (the stored
//! payload boundary: type names, schema versions, personal fields) and [`upcast`].
//!
//! Architecture invariant: this crate does no IO and reads no clock; time, ids and
//! facts from other streams arrive inside commands.

pub mod aftercare;
pub mod consent;
pub mod decider;
pub mod engagement;
pub mod group;
pub mod ids;
pub mod member;
pub mod payload;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod timeline;
pub mod upcast;
pub mod values;

#[cfg(test)]
mod laws;

pub use decider::{Decider, ErrorKind};
pub use group::{GroupCommand, GroupDecider, GroupError, GroupEvent, GroupState};
pub use ids::{
    CheckInId, ConsentId, DisclosureId, FollowUpId, GoalId, GroupId, MemberId, SessionId,
};
pub use member::{MemberCommand, MemberDecider, MemberError, MemberEvent, MemberState};
pub use payload::{DecodeError, StoredEvent};
pub use values::ValueError;
