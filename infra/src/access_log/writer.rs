//! Group commit for the access log.
//!
//! Under load many requests log their reads at the same moment, and each paid an INSERT and a
//! commit (a WAL flush) of its own. The writer gathers the entries of every request waiting at
//! that moment into one INSERT and answers each request only once that INSERT has committed, so
//! a read is still never answered before it is logged; a lone request is written at once, with
//! no added wait.
//!
//! A list read is indexed by the members it names through a GIN index, which takes new entries
//! into a pending list and merges them into the index in bulk. An INSERT that finds the list
//! full merges it first, and every request of its batch waits; so the writer merges the list
//! itself every [`MERGE_EVERY`], and the index lets it grow well past what that gathers
//! (migration `20261127000016_access_log_pending_list.sql`).

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::{insert, record, AccessEntry, Accessed};
use crate::clinic::ClinicId;

/// Requests waiting to be logged before a new one waits for room.
const QUEUE: usize = 1024;

/// The most members one INSERT names (a bound on one statement's parameters and lock time).
const MAX_ROWS: usize = 5_000;

/// INSERTs in flight at once: while one commits, the next batch gathers.
const WRITERS: usize = 2;

/// How often the writer merges the list index's pending entries into the index.
pub const MERGE_EVERY: Duration = Duration::from_millis(500);

/// Logs reads for the API: one INSERT for all the requests waiting at a moment.
#[derive(Debug, Clone)]
pub struct AccessLogWriter {
    requests: mpsc::Sender<Request>,
    pool: PgPool,
}

#[derive(Debug)]
struct Request {
    clinic: ClinicId,
    entries: Vec<AccessEntry>,
    logged: oneshot::Sender<Result<(), sqlx::Error>>,
}

impl AccessLogWriter {
    /// Starts the writer's tasks on the current tokio runtime; they end with the last clone.
    pub fn spawn(pool: PgPool) -> Self {
        let (requests, queue) = mpsc::channel(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(pool.clone(), Arc::clone(&queue)));
        }
        tokio::spawn(merge_pending_lists(pool.clone(), requests.downgrade()));
        Self { requests, pool }
    }

    /// Appends `entries` and returns once they are committed (or with the error that kept them
    /// out: the caller must then not answer the read).
    pub async fn record(
        &self,
        clinic: &ClinicId,
        entries: Vec<AccessEntry>,
    ) -> Result<(), sqlx::Error> {
        if entries.is_empty() {
            return Ok(());
        }
        let (logged, answer) = oneshot::channel();
        let request = Request {
            clinic: clinic.clone(),
            entries,
            logged,
        };
        match self.requests.send(request).await {
            Ok(()) => answer.await.unwrap_or(Err(sqlx::Error::WorkerCrashed)),
            // The writer's tasks are gone (the runtime is shutting down): write it here.
            Err(mpsc::error::SendError(request)) => {
                record(&self.pool, &request.clinic, &request.entries).await
            }
        }
    }
}

/// Merges the list index's pending entries every [`MERGE_EVERY`] (one process at a time),
/// until the writer is gone, or for good if this role may not (then autovacuum and the INSERTs
/// merge them, up to the index's 16 MB limit at a time).
async fn merge_pending_lists(pool: PgPool, writer: mpsc::WeakSender<Request>) {
    let mut failing = false;
    loop {
        tokio::time::sleep(MERGE_EVERY).await;
        if writer.upgrade().is_none() {
            return;
        }
        let merged = sqlx::query(include_str!("merge_pending_lists.sql"))
            .bind(crate::leadership::LOCK_SPACE)
            .execute(&pool)
            .await;
        match merged {
            Ok(_) => failing = false,
            Err(sqlx::Error::PoolClosed) => return,
            // Insufficient privilege (the role does not own the table, so not its index), or
            // no such index.
            Err(sqlx::Error::Database(db))
                if matches!(db.code().as_deref(), Some("42501" | "42P01")) =>
            {
                tracing::warn!(
                    error = %db,
                    "the access log's list index (access_log_member_lists_idx) cannot be merged \
                     here: INSERTs will merge up to 16 MB at a time, holding the reads that wait \
                     to be logged; connect as the owner of access_log (or a member of that \
                     role), or run ALTER INDEX access_log_member_lists_idx RESET \
                     (gin_pending_list_limit)"
                );
                return;
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(error = %error, "could not merge the access log's list index");
                }
                failing = true;
            }
        }
    }
}

/// One writer: takes every request waiting (up to [`MAX_ROWS`]), writes them in one INSERT,
/// answers each; until no sender is left.
async fn write_batches(pool: PgPool, queue: Arc<Mutex<mpsc::Receiver<Request>>>) {
    loop {
        let batch = {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            let mut rows = members_named(&first);
            let mut batch = vec![first];
            while rows < MAX_ROWS {
                match queue.try_recv() {
                    Ok(request) => {
                        rows += members_named(&request);
                        batch.push(request);
                    }
                    Err(_) => break,
                }
            }
            batch
        };
        write(&pool, batch).await;
    }
}

/// What a request adds to an INSERT's parameters: a member per single entry, a list's members.
fn members_named(request: &Request) -> usize {
    request
        .entries
        .iter()
        .map(|entry| match &entry.accessed {
            Accessed::Member(_) => 1,
            Accessed::List(members) => members.len().max(1),
        })
        .sum()
}

/// Whether the database refused the rows themselves (a data exception or a violated
/// constraint, SQLSTATE classes 22 and 23): then one request's entries may be the cause.
fn refused_the_data(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db)
        if db.code().is_some_and(|code| code.starts_with("22") || code.starts_with("23")))
}

async fn write(pool: &PgPool, batch: Vec<Request>) {
    let requests: Vec<(&ClinicId, &[AccessEntry])> = batch
        .iter()
        .map(|r| (&r.clinic, r.entries.as_slice()))
        .collect();
    let result = insert(pool, &requests).await;
    drop(requests);
    match result {
        Ok(()) => {
            for request in batch {
                // A request that gave up waiting (its client went away) needs no answer.
                let _ = request.logged.send(Ok(()));
            }
        }
        Err(error) if batch.len() > 1 && refused_the_data(&error) => {
            // One request's entries may be what failed: write each alone, so each request
            // gets its own answer.
            for request in batch {
                let result = record(pool, &request.clinic, &request.entries).await;
                let _ = request.logged.send(result);
            }
        }
        Err(error) => {
            // The database is down or failing: every request fails now (retrying one by one
            // would hold each for a connection timeout in turn).
            let failures = crate::db::failure_for_each(error, batch.len());
            for (request, failure) in batch.into_iter().zip(failures) {
                let _ = request.logged.send(Err(failure));
            }
        }
    }
}
