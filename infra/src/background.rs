//! The background tasks of `clinic serve`: a runner per projection and the scheduler, each
//! active in one process at a time (the others wait on standby), stopped on shutdown.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::keyring::Keyring;
use crate::projections::{self, ProjectionOptions};
use crate::scheduler::{self, SchedulerOptions};

/// The running tasks and their stop signal.
#[derive(Debug)]
pub struct BackgroundTasks {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl BackgroundTasks {
    /// Starts the projection runners and the scheduler (tick from `config`).
    pub fn start(pool: &PgPool, keyring: &Keyring, config: &Config) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut tasks =
            projections::spawn_runners(pool, keyring, &ProjectionOptions::default(), &stopped);
        tasks.push(scheduler::spawn(
            pool,
            keyring,
            SchedulerOptions {
                check_in_grace: config.rules.check_in_grace(),
                ..SchedulerOptions::every(config.scheduler_tick)
            },
            &stopped,
        ));
        Self { stop, tasks }
    }

    /// Signals every task to stop and waits until they have (a page in flight commits or
    /// rolls back; the locks are released).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::warn!(%error, "a background task ended abnormally");
            }
        }
    }
}

/// A step of a background loop (a projection page, a scheduler tick) that panicked: a bug, or a
/// stored value from before a check existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Panicked;

/// Runs one step of a background loop so that a panic in it ends the step, not the loop: the
/// step's transaction rolls back with its dropped connection, the panic has already been
/// printed by the hook, and the caller logs and goes on. Unchecked, a panic would end the
/// task silently, and with it the read model or the scheduler for every clinic.
///
/// Asserting unwind safety is sound for these steps: what they share beyond the call (pool,
/// keyring, options) is only read, and their writes are in transactions that roll back.
pub(crate) async fn unless_panicked<F: Future>(step: F) -> Result<F::Output, Panicked> {
    AssertUnwindSafe(step)
        .catch_unwind()
        .await
        .map_err(|_| Panicked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_step_is_an_error_and_the_caller_goes_on() {
        let panicked = unless_panicked(async {
            let stored_year: i32 = "10000".parse().unwrap();
            assert!(stored_year < 10_000, "out of range");
            1
        })
        .await;
        assert_eq!(panicked, Err(Panicked));
        assert_eq!(unless_panicked(async { 2 }).await, Ok(2));
    }
}
