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
//!
//! # Time in the command, the actor in the envelope
//! Issue 3 asked that commands carry their own time and actor. They carry the time
//! (`at`, or `now` for the scheduler's commands), because the rules read it: the order
//! of pipeline steps, due check-ins and follow-ups, retention, the roster at a
//! session's time. They do not carry who sent them: by STYLE's envelope rule, domain
//! events hold business facts only, and the actor (with clinic, correlation and
//! causation ids, recorded-at and schema version) is metadata that infra's event
//! envelope records for every event, so no rule here could read it and no event could
//! forget it. Where a person is part of the fact itself, the command and event name
//! them as a field: who assessed at intake (`assessed_by`), who signed a consent
//! (`signed_by`), who disclosed records (`disclosed_by`), the primary counselor and the
//! group's facilitator. Those may differ from the envelope's actor (a clerk recording a
//! clinician's assessment).

pub mod aftercare;
pub mod consent;
pub mod decider;
pub mod engagement;
pub mod group;
pub mod ids;
pub mod member;
pub mod payload;
#[cfg(test)]
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
