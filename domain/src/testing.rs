//! Given/when/then for deciders: given these past events, when this command, then
//! these events (or this error).
//!
//! ```text
//! given::<GroupDecider>([group_formed(capacity(1)), member_joined(ann())])
//!     .when(JoinGroup { member: bob(), member_stage: Some(Stage::InTreatment), at })
//!     .then_err(GroupError::GroupFull { capacity: 1 });
//! ```
//!
//! Available to this crate's tests, and to other crates' tests with the `testing` feature.

use std::fmt::Debug;

use crate::decider::Decider;

/// Starts a specification from a stream's past events.
pub fn given<D: Decider>(events: impl IntoIterator<Item = impl Into<D::Event>>) -> Given<D> {
    Given {
        history: events.into_iter().map(Into::into).collect(),
    }
}

/// A stream's past events, waiting for a command.
#[derive(Debug)]
pub struct Given<D: Decider> {
    history: Vec<D::Event>,
}

impl<D: Decider> Given<D> {
    /// Decides `command` against the state folded from the past events.
    pub fn when(self, command: impl Into<D::Command>) -> Then<D> {
        let state = D::fold(&self.history);
        let result = D::decide(&state, command.into());
        Then {
            history: self.history,
            state,
            result,
        }
    }
}

/// The decision, waiting to be checked.
#[derive(Debug)]
pub struct Then<D: Decider> {
    history: Vec<D::Event>,
    state: D::State,
    result: Result<Vec<D::Event>, D::Error>,
}

impl<D> Then<D>
where
    D: Decider,
    D::Event: Debug + PartialEq,
    D::Error: Debug + PartialEq,
    D::State: Debug + PartialEq,
{
    /// Checks the command produced exactly `expected`, and that replaying the whole
    /// stream from scratch gives the same state as evolving the old state by the new
    /// events. Returns that state for further checks.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = impl Into<D::Event>>) -> D::State {
        let expected: Vec<D::Event> = expected.into_iter().map(Into::into).collect();
        let events = match self.result {
            Ok(events) => events,
            Err(error) => panic!("expected events\n  {expected:#?}\ngot error\n  {error:#?}"),
        };
        assert_eq!(events, expected, "\nexpected events (right), got (left)");
        let evolved = events.iter().fold(self.state, |s, e| D::evolve(s, e));
        let replayed = D::fold(self.history.iter().chain(&events));
        assert_eq!(
            evolved, replayed,
            "\nreplaying the stream disagrees with evolving it"
        );
        evolved
    }

    /// Checks the command was refused with `expected`.
    #[track_caller]
    pub fn then_err(self, expected: impl Into<D::Error>) {
        let expected = expected.into();
        match self.result {
            Ok(events) => panic!("expected error\n  {expected:#?}\ngot events\n  {events:#?}"),
            Err(error) => assert_eq!(error, expected, "\nexpected error (right), got (left)"),
        }
    }

    /// Checks the command was accepted and returns its events, for checks that do not
    /// compare whole events.
    #[track_caller]
    pub fn then_ok(self) -> Vec<D::Event> {
        match self.result {
            Ok(events) => events,
            Err(error) => panic!("expected events, got error\n  {error:#?}"),
        }
    }

    /// Checks the command was refused and returns the error, for checks beyond
    /// equality (its kind, its message).
    #[track_caller]
    pub fn then_error(self) -> D::Error {
        match self.result {
            Ok(events) => panic!("expected an error, got events\n  {events:#?}"),
            Err(error) => error,
        }
    }
}
