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
use crate::payload::StoredEvent;

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
    D::Event: Debug + PartialEq + StoredEvent,
    D::Error: Debug + PartialEq,
    D::State: Debug + PartialEq,
{
    /// Checks the command produced exactly `expected`, and that the whole stream read
    /// back from its stored form (`to_data`, then `from_stored` with its type name and
    /// schema version, as the event store does) folds to the same state as evolving the
    /// old state by the new events. Returns that state for further checks.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = impl Into<D::Event>>) -> D::State {
        let expected: Vec<D::Event> = expected.into_iter().map(Into::into).collect();
        let events = match self.result {
            Ok(events) => events,
            Err(error) => panic!("expected events\n  {expected:#?}\ngot error\n  {error:#?}"),
        };
        assert_eq!(events, expected, "\nexpected events (right), got (left)");
        let evolved = events.iter().fold(self.state, |s, e| D::evolve(s, e));
        let stored: Vec<D::Event> = self
            .history
            .iter()
            .chain(&events)
            .map(stored_round_trip)
            .collect();
        let replayed = D::fold(&stored);
        assert_eq!(
            evolved, replayed,
            "\nreplaying the stream from its stored form disagrees with evolving it"
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

/// An event as the event store gives it back: written with its type name, schema
/// version and data, read through `from_stored` (and so through any upcaster).
#[track_caller]
pub fn stored_round_trip<E: StoredEvent + Debug>(event: &E) -> E {
    match E::from_stored(event.event_type(), event.schema_version(), event.to_data()) {
        Ok(read) => read,
        Err(error) => panic!("{event:?}\ndoes not read back from its stored form: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::payload::DecodeError;

    /// A counter whose stored form forgets how much was added: a lossy payload the
    /// harness must catch.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Added(u32);

    impl StoredEvent for Added {
        const CATEGORY: &'static str = "counter";

        fn event_type(&self) -> &'static str {
            "Added"
        }

        fn schema_version(&self) -> u16 {
            1
        }

        fn to_data(&self) -> Value {
            json!({})
        }

        fn from_stored(_: &str, _: u16, _: Value) -> Result<Self, DecodeError> {
            Ok(Self(1))
        }

        fn personal_fields(_: &str) -> &'static [&'static str] {
            &[]
        }
    }

    struct Counter;

    impl Decider for Counter {
        type State = u32;
        type Command = u32;
        type Event = Added;
        type Error = ();

        fn decide(_: &u32, command: u32) -> Result<Vec<Added>, ()> {
            Ok(vec![Added(command)])
        }

        fn evolve(state: u32, event: &Added) -> u32 {
            state + event.0
        }
    }

    #[test]
    fn then_fails_when_the_stored_form_loses_a_fact() {
        let lossy = std::panic::catch_unwind(|| {
            given::<Counter>([Added(1)]).when(5_u32).then([Added(5)]);
        });
        assert!(lossy.is_err());
        // A fact the stored form keeps (here, adding 1) passes.
        given::<Counter>([Added(1)]).when(1_u32).then([Added(1)]);
    }
}
