//! Whether a process's worker loops may talk to the SMTP server: a circuit breaker shared by
//! all of them.
//!
//! While the server itself fails (no connection, a refused greeting or login) every email
//! would fail, and a mail provider locks an account whose login fails too often. So the first
//! loop to see the trouble closes the gate for the retry backoff, growing while the trouble
//! lasts; the other loops wait too; once the backoff is over one loop alone tries the server
//! again (the probe) while the others keep waiting for its answer. A process then tries a wrong
//! password a few times an hour however many loops it runs, not once per loop.
//!
//! Hand-written rather than a circuit-breaker crate: the pause must be the outbox's own
//! [`RetryPolicy`] backoff, and "trouble" is a property of a task's outcome, not of an error
//! type; the state is three fields behind a mutex.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::worker::RetryPolicy;

/// What a loop may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Take a task.
    Go,
    /// Take a task: it is the probe after a pause, so report how it went.
    Probe,
    /// Do not talk to the server for this long, then ask again.
    Wait(Duration),
}

/// How a task admitted by the gate went, as far as the server is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// The server took part in a session (an email sent, or refused for reasons of its own).
    Answered,
    /// The server failed the session: no connection, a refused greeting or login.
    Trouble,
    /// The task did not reach the server (nothing due, a database error).
    NotReached,
}

/// The shared state; see the module documentation.
#[derive(Debug)]
pub(crate) struct ServerGate {
    retry: RetryPolicy,
    /// While a probe is out, how often the other loops look again.
    recheck: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Server failures in a row.
    failures: u32,
    /// No one talks to the server before this; `None` while it answers.
    closed_until: Option<Instant>,
    /// A loop is trying the server after a pause.
    probing: bool,
}

impl ServerGate {
    /// A gate that pauses with `retry`'s backoff; waiting loops look again at least every
    /// `recheck`.
    pub(crate) fn new(retry: RetryPolicy, recheck: Duration) -> Self {
        Self {
            retry,
            recheck,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether a loop may take a task now.
    pub(crate) fn admit(&self) -> Admission {
        let mut state = self.lock();
        let Some(until) = state.closed_until else {
            return Admission::Go;
        };
        let now = Instant::now();
        if now < until {
            Admission::Wait(until - now)
        } else if state.probing {
            Admission::Wait(self.recheck)
        } else {
            state.probing = true;
            Admission::Probe
        }
    }

    /// A task [`Self::admit`] let through, to report on when it is done.
    pub(crate) fn pass(&self, admission: Admission) -> Pass<'_> {
        Pass {
            gate: self,
            admission,
            reported: false,
        }
    }

    /// How a task that [`Self::admit`] let through went.
    pub(crate) fn report(&self, admission: Admission, report: Report) {
        let mut state = self.lock();
        let was_probe = admission == Admission::Probe;
        if was_probe {
            state.probing = false;
        } else if state.probing && report == Report::Trouble {
            // A loop that was mid-session when the gate closed, failing while the probe is
            // out: the probe's answer decides the next pause, not this late one.
            return;
        }
        match report {
            Report::Answered if !was_probe && state.closed_until.is_some() => {
                // A loop admitted before the gate closed, answered on a session it already
                // had (a pooled connection logged in before a password rotation, say): that
                // says nothing of new sessions. The probe decides when the gate opens.
            }
            Report::Answered => {
                state.failures = 0;
                state.closed_until = None;
            }
            Report::Trouble => {
                // A loop that was already talking to the server when another closed the gate
                // saw the same trouble: it does not lengthen the pause.
                let paused = state
                    .closed_until
                    .is_some_and(|until| Instant::now() < until);
                if was_probe || !paused {
                    state.failures = state.failures.saturating_add(1);
                    state.closed_until =
                        Some(Instant::now() + self.retry.jittered_delay(state.failures));
                }
            }
            Report::NotReached => {}
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A task the gate let through, until it says how it went. Dropped without a report (its loop
/// aborted mid-task), it reports [`Report::NotReached`], so a probe is never left out for good
/// with the other loops waiting on it.
pub(crate) struct Pass<'a> {
    gate: &'a ServerGate,
    admission: Admission,
    reported: bool,
}

impl Pass<'_> {
    /// How the task went.
    pub(crate) fn report(mut self, report: Report) {
        self.reported = true;
        self.gate.report(self.admission, report);
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.gate.report(self.admission, Report::NotReached);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> ServerGate {
        ServerGate::new(
            RetryPolicy {
                base: Duration::from_secs(10),
                max_backoff: Duration::from_secs(40),
                max_attempts: 60,
            },
            Duration::from_secs(1),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn trouble_closes_the_gate_for_every_loop_then_lets_one_probe_through() {
        let gate = gate();
        assert_eq!(gate.admit(), Admission::Go);
        gate.report(Admission::Go, Report::Trouble);
        let Admission::Wait(pause) = gate.admit() else {
            panic!("the gate stayed open after trouble");
        };
        assert!(pause >= Duration::from_secs(5) && pause <= Duration::from_secs(10));
        // A second loop that was mid-session reports the same trouble: no longer pause.
        gate.report(Admission::Go, Report::Trouble);
        assert!(matches!(gate.admit(), Admission::Wait(p) if p <= pause));

        tokio::time::advance(pause).await;
        assert_eq!(gate.admit(), Admission::Probe);
        assert_eq!(gate.admit(), Admission::Wait(Duration::from_secs(1)));
        // The probe fails: a longer pause (the second step of the backoff).
        gate.report(Admission::Probe, Report::Trouble);
        let Admission::Wait(second) = gate.admit() else {
            panic!("the gate opened after a failed probe");
        };
        assert!(second >= Duration::from_secs(10), "{second:?}");

        tokio::time::advance(second).await;
        assert_eq!(gate.admit(), Admission::Probe);
        gate.report(Admission::Probe, Report::Answered);
        assert_eq!(gate.admit(), Admission::Go);
        assert_eq!(gate.admit(), Admission::Go);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_dropped_unreported_hands_the_probe_on() {
        let gate = gate();
        gate.report(Admission::Go, Report::Trouble);
        tokio::time::advance(Duration::from_secs(10)).await;
        let probe = gate.admit();
        assert_eq!(probe, Admission::Probe);
        drop(gate.pass(probe));
        assert_eq!(gate.admit(), Admission::Probe, "not left out for good");
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_failure_while_the_probe_is_out_does_not_lengthen_the_pause() {
        let gate = gate();
        gate.report(Admission::Go, Report::Trouble);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(gate.admit(), Admission::Probe);
        gate.report(Admission::Go, Report::Trouble);
        assert_eq!(
            gate.admit(),
            Admission::Wait(Duration::from_secs(1)),
            "still probing"
        );
        gate.report(Admission::Probe, Report::Trouble);
        let Admission::Wait(pause) = gate.admit() else {
            panic!("the gate opened after a failed probe");
        };
        assert!(
            pause <= Duration::from_secs(20),
            "the second step, not the third: {pause:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_success_on_an_old_session_does_not_reopen_the_gate() {
        let gate = gate();
        gate.report(Admission::Go, Report::Trouble);
        let Admission::Wait(pause) = gate.admit() else {
            panic!("the gate stayed open after trouble");
        };
        // Another loop, admitted before, sends on the session it had.
        gate.report(Admission::Go, Report::Answered);
        assert!(matches!(gate.admit(), Admission::Wait(p) if p == pause));
        tokio::time::advance(pause).await;
        assert_eq!(gate.admit(), Admission::Probe);
        gate.report(Admission::Go, Report::Answered);
        assert_eq!(
            gate.admit(),
            Admission::Wait(Duration::from_secs(1)),
            "the probe decides"
        );
        gate.report(Admission::Probe, Report::Answered);
        assert_eq!(gate.admit(), Admission::Go);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_did_not_reach_the_server_hands_the_probe_on() {
        let gate = gate();
        gate.report(Admission::Go, Report::Trouble);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(gate.admit(), Admission::Probe);
        gate.report(Admission::Probe, Report::NotReached);
        assert_eq!(gate.admit(), Admission::Probe, "the next loop probes");
        gate.report(Admission::Probe, Report::Answered);
        assert_eq!(gate.admit(), Admission::Go);
    }
}
