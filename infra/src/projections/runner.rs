//! Running projections: catch up from the checkpoint in pages, then follow the log live, in
//! exactly one process at a time; and waiting for them (read-your-writes).

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::keyring::Keyring;

use super::{apply_page, checkpoint, ProjectionError, ProjectionName};
use crate::background::unless_panicked;
use crate::db::Superseded;
use crate::event_store::{EventStore, Notifications, Scope};
use crate::leadership::{sleep_or_stop, stopped, Candidate, Deposed, Leader};

/// How a runner reads the log and waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionOptions {
    /// Events per page; each page is one transaction.
    pub batch_size: u32,
    /// How long to wait for a NOTIFY before reading the log anyway.
    pub poll_interval: Duration,
    /// How often a standby process tries to take over.
    pub standby_retry: Duration,
}

impl Default for ProjectionOptions {
    fn default() -> Self {
        Self {
            batch_size: 2_000,
            poll_interval: Duration::from_secs(1),
            standby_retry: Duration::from_secs(2),
        }
    }
}

/// Applies every committed event after the projection's checkpoint, page by page, each page
/// in one transaction with the checkpoint. Returns how many events it applied.
///
/// Safe to call from several tasks or processes at once: each page's transaction locks the
/// checkpoint row first and, if another writer moved it meanwhile, re-reads from there
/// instead of applying its page.
pub async fn catch_up(
    pool: &PgPool,
    keyring: &Keyring,
    projection: ProjectionName,
    options: &ProjectionOptions,
) -> Result<u64, ProjectionError> {
    catch_up_pages(pool, keyring, projection, options, usize::MAX).await
}

/// [`catch_up`], stopping after `max_pages` pages (tests stop a runner mid-log with it).
pub async fn catch_up_pages(
    pool: &PgPool,
    keyring: &Keyring,
    projection: ProjectionName,
    options: &ProjectionOptions,
    max_pages: usize,
) -> Result<u64, ProjectionError> {
    checkpoint::ensure(pool, projection).await?;
    let store = EventStore::new(pool.clone());
    let mut cursor = checkpoint::read(pool, projection).await?;
    let mut applied = 0;
    let mut pages = 0;
    while pages < max_pages {
        let page = store
            .read_log(&Scope::All, cursor, options.batch_size)
            .await?;
        if page.events.is_empty() {
            break;
        }
        let mut tx = pool.begin().await?;
        open_page(&mut tx).await?;
        let current = checkpoint::lock(&mut tx, projection).await?;
        if current != cursor {
            // Another writer (a second runner, a rebuild's swap) moved it: start from there.
            tx.rollback().await?;
            cursor = current;
            continue;
        }
        apply_page(&mut tx, keyring, projection, &page.events).await?;
        checkpoint::store(&mut tx, projection, page.next).await?;
        tx.commit().await?;
        cursor = page.next;
        applied += page.events.len() as u64;
        pages += 1;
    }
    Ok(applied)
}

/// Opens a page's transaction (`sql/begin_page.sql`): no WAL flush for its commit, and
/// [`ProjectionError::Superseded`] before any fold work when a newer release has migrated the
/// database.
pub(super) async fn open_page(tx: &mut sqlx::PgConnection) -> Result<(), ProjectionError> {
    let (_, newest_migration): (String, Option<i64>) =
        sqlx::query_as(include_str!("sql/begin_page.sql"))
            .fetch_one(tx)
            .await?;
    Superseded::check(newest_migration)?;
    Ok(())
}

/// Runs `projection` until `stop` turns true: on standby while another process leads, then
/// catching up and following the log (NOTIFY, polling as a fallback). Errors are logged and
/// retried; the function returns when stopped, or for good when a newer release has migrated
/// the database ([`ProjectionError::Superseded`]: its folds own the tables now).
///
/// A fold that panics (an event the projection cannot store: a bug, or a value from before a
/// check existed) is logged as an error and retried from the checkpoint like a failed page:
/// nothing of its page is stored and the checkpoint never passes it. The task stays alive,
/// keeps saying so, and picks up again once a fixed release or a rebuild gets past the event.
/// (The lock goes with the panicking leader's connection, so another process may try
/// meanwhile.)
pub async fn run(
    pool: PgPool,
    keyring: Keyring,
    projection: ProjectionName,
    options: ProjectionOptions,
    mut stop: watch::Receiver<bool>,
) {
    let mut candidate = Candidate::new(format!("projection:{projection}"));
    loop {
        if *stop.borrow() {
            return;
        }
        match candidate.try_lead(&pool).await {
            Ok(Some(leader)) => {
                tracing::info!(%projection, "running the projection");
                let led = unless_panicked(lead(
                    &pool, &keyring, projection, &options, leader, &mut stop,
                ))
                .await;
                let Ok(led) = led else {
                    tracing::error!(
                        %projection,
                        "applying a page panicked (see the panic above); nothing of it was \
                         stored, and the projection retries from its checkpoint"
                    );
                    if sleep_or_stop(&mut stop, options.standby_retry).await {
                        return;
                    }
                    continue;
                };
                match led {
                    Ok(()) => return,
                    Err(ProjectionError::Superseded(superseded)) => {
                        // For good: this build's folds are older than the database's schema.
                        tracing::error!(
                            %projection,
                            %superseded,
                            "stopped the projection for good; restart this process on the new release"
                        );
                        return;
                    }
                    Err(error) => tracing::warn!(
                        %projection,
                        error = %crate::error_chain(&error),
                        "the projection stopped; it will resume from its checkpoint"
                    ),
                }
            }
            Ok(None) => tracing::debug!(%projection, "another process runs the projection"),
            Err(error) => tracing::warn!(
                %projection,
                error = %crate::error_chain(&error),
                "could not take the projection's lock"
            ),
        }
        if sleep_or_stop(&mut stop, options.standby_retry).await {
            return;
        }
    }
}

async fn lead(
    pool: &PgPool,
    keyring: &Keyring,
    projection: ProjectionName,
    options: &ProjectionOptions,
    mut leader: Leader,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), ProjectionError> {
    let result = async {
        let mut notifications = Notifications::listen(pool);
        loop {
            tokio::select! {
                biased;
                () = stopped(stop) => return Ok(()),
                applied = catch_up(pool, keyring, projection, options) => {
                    let applied = applied?;
                    if applied > 0 {
                        tracing::debug!(%projection, applied, "applied events");
                    }
                }
            }
            // Still leading? (The lock lives and dies with this connection.)
            leader.check().await.map_err(|deposed| match deposed {
                Deposed::CheckFailed(error) => ProjectionError::Database(error),
                Deposed::Superseded(superseded) => ProjectionError::Superseded(superseded),
            })?;
            tokio::select! {
                biased;
                () = stopped(stop) => return Ok(()),
                _ = notifications.next(options.poll_interval) => {}
            }
        }
    }
    .await;
    leader.release().await;
    result
}

/// Starts a runner task per projection; they stop when `stop` turns true.
pub fn spawn_runners(
    pool: &PgPool,
    keyring: &Keyring,
    options: &ProjectionOptions,
    stop: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    ProjectionName::ALL
        .iter()
        .map(|&projection| {
            tokio::spawn(run(
                pool.clone(),
                keyring.clone(),
                projection,
                options.clone(),
                stop.clone(),
            ))
        })
        .collect()
}

/// Whether the projections reached a position in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Every projection asked about has applied the position.
    CaughtUp,
    /// The timeout passed first; the read models may not show the write yet.
    TimedOut,
}

/// Waits, at most `timeout`, until every projection in `projections` has applied the event at
/// `position` (the last position a mutation appended): read-your-writes for the API.
///
/// Compares in commit-safe order, so a projection that has passed a higher position committed
/// earlier does not count as having applied this one.
pub async fn wait_until_caught_up(
    pool: &PgPool,
    projections: &[ProjectionName],
    position: i64,
    timeout: Duration,
) -> Result<Freshness, ProjectionError> {
    if position <= 0 || projections.is_empty() {
        return Ok(Freshness::CaughtUp);
    }
    let names: Vec<&str> = projections.iter().map(|p| p.as_str()).collect();
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(2);
    loop {
        let caught_up: bool = sqlx::query_scalar(include_str!("sql/caught_up.sql"))
            .bind(&names)
            .bind(position)
            .fetch_one(pool)
            .await?;
        if caught_up {
            return Ok(Freshness::CaughtUp);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Freshness::TimedOut);
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(Duration::from_millis(25));
    }
}
