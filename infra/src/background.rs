//! The background tasks of `clinic serve`: a runner per projection and the scheduler, each
//! active in one process at a time (the others wait on standby), stopped on shutdown.

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
