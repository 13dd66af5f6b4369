//! Rebuilding projections from position 0 without downtime.
//!
//! 1. Empty copies of the projections' tables are created in shadow schemas
//!    (`rebuild_<name>`, by `prepare_read_model_rebuild`), while the live tables keep serving
//!    and the live runners keep updating them.
//! 2. The whole log is folded into the shadow tables, page by page (the next page is read
//!    while the current one is written, each projection on its own connection), with
//!    `search_path` pointing the projections' SQL at the shadow schemas. The shadow tables
//!    have their primary keys only; their secondary indexes are built once they are full
//!    (`index_rebuilt_read_model`), which costs far less than maintaining them row by row.
//! 3. One transaction locks the projections' checkpoint rows (the live runners' pages wait),
//!    applies the last pages, moves the shadow tables into `public` in place of the old ones
//!    (`swap_in_rebuilt_read_model`) and sets the checkpoints to where the rebuild stopped.
//!    Readers see the old tables or the new ones, never a half-built one; the live runners
//!    resume from the new checkpoints.

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::keyring::Keyring;

use super::runner::open_page;
use super::{apply_page, checkpoint, ProjectionError, ProjectionName};
use crate::event_store::{EventStore, EventStoreError, LogCursor, LogPage, Scope};
use crate::leadership::Candidate;

/// How a rebuild reads and swaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildOptions {
    /// Events per page (one transaction each).
    pub batch_size: u32,
    /// Pages read ahead of the one being written.
    pub read_ahead: usize,
    /// How long the swap may wait for a table lock (a long-running reader) before it gives up
    /// and tries again.
    pub lock_timeout: Duration,
}

impl Default for RebuildOptions {
    fn default() -> Self {
        // Measured (README.projections.md): pages of 10,000 with one read ahead gave 66k
        // events/s at 157 MiB peak RSS; 5,000 gave 44k at 85 MiB; 20,000 gave 65k at 286 MiB.
        Self {
            batch_size: 10_000,
            read_ahead: 1,
            lock_timeout: Duration::from_secs(10),
        }
    }
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// The projections rebuilt.
    pub projections: Vec<ProjectionName>,
    /// Events read from the log and folded.
    pub events: u64,
    /// Where the rebuilt tables are in the log (the projections' new checkpoint).
    pub checkpoint: LogCursor,
    /// Wall time, from the first read to the swap's commit.
    pub elapsed: Duration,
}

/// Times the swap is tried when a reader holds a table longer than the lock timeout.
const SWAP_ATTEMPTS: usize = 5;

/// Rebuilds `projections` from position 0 and swaps the new tables in when caught up.
/// `progress` is told how many events have been folded so far, after each page.
///
/// Refuses to start while another rebuild of one of them runs.
pub async fn rebuild(
    pool: &PgPool,
    keyring: &Keyring,
    projections: &[ProjectionName],
    options: &RebuildOptions,
    mut progress: impl FnMut(u64) + Send,
) -> Result<RebuildReport, ProjectionError> {
    let started = Instant::now();
    let mut projections = projections.to_vec();
    projections.sort();
    projections.dedup();

    let mut guards = Vec::new();
    for &projection in &projections {
        let mut candidate = Candidate::new(format!("rebuild:{projection}"));
        match candidate.try_lead(pool).await? {
            Some(guard) => guards.push(guard),
            None => return Err(ProjectionError::RebuildRunning(projection)),
        }
    }
    let result = rebuild_locked(pool, keyring, &projections, options, &mut progress).await;
    if result.is_err() {
        // Still holding their locks: no other rebuild uses these shadow tables.
        for &projection in &projections {
            drop_shadow(pool, projection).await;
        }
    }
    for guard in guards {
        guard.release().await;
    }
    let (events, checkpoint) = result?;
    Ok(RebuildReport {
        projections,
        events,
        checkpoint,
        elapsed: started.elapsed(),
    })
}

/// Drops the shadow tables of rebuilds that did not finish (a process killed mid-rebuild),
/// for each projection no rebuild is running for now; `clinic serve` does it at start.
///
/// Shadow tables hold the members' personal fields as the rebuild found them, and an erasure
/// scrubs only the live tables: a rebuild that will never swap them in must not keep them. A
/// failed rebuild drops its own at once; this catches those whose process died.
pub async fn drop_abandoned_rebuilds(pool: &PgPool) -> Result<(), ProjectionError> {
    for &projection in ProjectionName::ALL {
        let mut candidate = Candidate::new(format!("rebuild:{projection}"));
        if let Some(guard) = candidate.try_lead(pool).await? {
            drop_shadow(pool, projection).await;
            guard.release().await;
        }
    }
    Ok(())
}

/// `DROP SCHEMA rebuild_<projection> CASCADE`, best effort (logged when it fails). The caller
/// holds the projection's rebuild lock.
async fn drop_shadow(pool: &PgPool, projection: ProjectionName) {
    // The name is one of the enum's, never input.
    let statement = format!(
        "DROP SCHEMA IF EXISTS rebuild_{} CASCADE",
        projection.as_str()
    );
    if let Err(error) = sqlx::query(&statement).execute(pool).await {
        tracing::warn!(error = %error, %projection, "could not drop an unfinished rebuild's tables");
    }
}

async fn rebuild_locked(
    pool: &PgPool,
    keyring: &Keyring,
    projections: &[ProjectionName],
    options: &RebuildOptions,
    progress: &mut (impl FnMut(u64) + Send),
) -> Result<(u64, LogCursor), ProjectionError> {
    for &projection in projections {
        checkpoint::ensure(pool, projection).await?;
        sqlx::query(include_str!("sql/prepare_rebuild.sql"))
            .bind(projection.as_str())
            .execute(pool)
            .await?;
    }
    let mut search_path: Vec<String> = projections.iter().map(|p| format!("rebuild_{p}")).collect();
    search_path.push("public".to_owned());
    let search_path = search_path.join(", ");

    // Fill the shadow tables, reading the next pages while writing this one, and writing each
    // projection's part of a page on its own connection (their tables are disjoint).
    let (sender, mut pages) = mpsc::channel(options.read_ahead.max(1));
    let reader = tokio::spawn(read_pages(
        EventStore::new(pool.clone()),
        options.batch_size,
        sender,
    ));
    let mut cursor = LogCursor::START;
    let mut events = 0;
    while let Some(page) = pages.recv().await {
        let page = page?;
        let writes = projections.iter().map(|&projection| {
            let page = &page;
            let search_path = &search_path;
            async move {
                let mut tx = pool.begin().await?;
                shadow_transaction(&mut tx, search_path).await?;
                apply_page(&mut tx, keyring, projection, &page.events).await?;
                tx.commit().await?;
                Ok::<(), ProjectionError>(())
            }
        });
        futures::future::try_join_all(writes).await?;
        cursor = page.next;
        events += page.events.len() as u64;
        progress(events);
    }
    drop(pages);
    let _ = reader.await;
    for &projection in projections {
        sqlx::query(include_str!("sql/index_rebuild.sql"))
            .bind(projection.as_str())
            .execute(pool)
            .await?;
    }

    let mut attempt = 1;
    loop {
        match swap(pool, keyring, projections, &search_path, cursor, options).await {
            Ok((last, more)) => {
                events += more;
                progress(events);
                return Ok((events, last));
            }
            Err(ProjectionError::Database(sqlx::Error::Database(db)))
                if db.code().as_deref() == Some("55P03") && attempt < SWAP_ATTEMPTS =>
            {
                tracing::warn!(
                    attempt,
                    "a reader held a read-model table; retrying the swap"
                );
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Reads the log from the start until a page comes back empty.
async fn read_pages(
    store: EventStore,
    batch_size: u32,
    sender: mpsc::Sender<Result<LogPage, EventStoreError>>,
) {
    let mut cursor = LogCursor::START;
    loop {
        match store.read_log(&Scope::All, cursor, batch_size).await {
            Ok(page) if page.events.is_empty() => return,
            Ok(page) => {
                cursor = page.next;
                if sender.send(Ok(page)).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                let _ = sender.send(Err(error)).await;
                return;
            }
        }
    }
}

/// Points the transaction at the shadow tables and opens it as a runner's page
/// ([`open_page`]): their writes need no WAL flush either (a crash loses the whole rebuild,
/// which simply runs again), and a rebuild by an older release stops at its next page.
async fn shadow_transaction(
    tx: &mut sqlx::PgConnection,
    search_path: &str,
) -> Result<(), ProjectionError> {
    sqlx::query(include_str!("sql/search_path.sql"))
        .bind(search_path)
        .execute(&mut *tx)
        .await?;
    open_page(tx).await
}

/// The swap: under the projections' checkpoint locks, apply what was appended since, move the
/// tables, move the checkpoints. Returns the final cursor and how many events it applied.
async fn swap(
    pool: &PgPool,
    keyring: &Keyring,
    projections: &[ProjectionName],
    search_path: &str,
    mut cursor: LogCursor,
    options: &RebuildOptions,
) -> Result<(LogCursor, u64), ProjectionError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT set_config('lock_timeout', $1, true)")
        .bind(format!("{}ms", options.lock_timeout.as_millis()))
        .execute(&mut *tx)
        .await?;
    for &projection in projections {
        checkpoint::lock(&mut tx, projection).await?;
    }
    shadow_transaction(&mut tx, search_path).await?;
    // This transaction holds an id now, so the log read below stops short of anything that
    // commits after it started: the loop ends, and the live runners pick those events up.
    // (Read on this transaction's own connection: the pool may be busy with the runners
    // waiting for the locks this transaction holds.)
    let mut applied = 0;
    loop {
        let page =
            EventStore::read_log_on(&mut tx, &Scope::All, cursor, options.batch_size).await?;
        if page.events.is_empty() {
            break;
        }
        for &projection in projections {
            apply_page(&mut tx, keyring, projection, &page.events).await?;
        }
        cursor = page.next;
        applied += page.events.len() as u64;
    }
    for &projection in projections {
        sqlx::query(include_str!("sql/swap_rebuild.sql"))
            .bind(projection.as_str())
            .execute(&mut *tx)
            .await?;
        checkpoint::store(&mut tx, projection, cursor).await?;
    }
    tx.commit().await?;
    Ok((cursor, applied))
}
