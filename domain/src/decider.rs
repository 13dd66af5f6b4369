//! The shape every stream kind's rules share: `decide` a command against the state
//! folded from past events, `evolve` the state by an event.
//!
//! Both are pure: what they need from outside (the time, another stream's fact, a
//! clinic setting) arrives inside the command.

/// A stream kind's rules, as a pair of pure functions over an initial state.
///
/// Implemented by [`crate::member::MemberDecider`] and [`crate::group::GroupDecider`];
/// infra's command handler and the [`crate::testing`] harness are written against it.
pub trait Decider {
    /// What the past events mean now.
    type State: Default + Clone;
    /// What someone asks for.
    type Command;
    /// What is recorded.
    type Event: Clone;
    /// Why a command was refused.
    type Error;

    /// The events a command produces on this state, or why it is refused.
    fn decide(state: &Self::State, command: Self::Command)
        -> Result<Vec<Self::Event>, Self::Error>;

    /// The state after one more event.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// The state after a stream's events, from the start.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        events
            .into_iter()
            .fold(Self::State::default(), |state, event| {
                Self::evolve(state, event)
            })
    }
}

/// What kind of refusal an error is, for the API's one error mapping
/// (`BAD_USER_INPUT`, `NOT_FOUND`, `CONFLICT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input itself is invalid, whatever the state (a validation error).
    InvalidInput,
    /// The command names something the stream does not hold.
    NotFound,
    /// The input is valid but a rule forbids it in the current state.
    Conflict,
}
