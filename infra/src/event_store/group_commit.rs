//! Group commit: single-event appends that wait at the same moment share one statement and one
//! commit (`append_group`, migration 10), each still checked against its own expected version.
//!
//! Why: a single-event append is mostly fixed cost (a round trip, a statement, a commit and its
//! WAL flush), and the request handlers of `clinic serve` append concurrently through one
//! store. At most [`STATEMENTS_IN_FLIGHT`] single-event append statements of a store run at
//! once; appends that arrive while one runs wait, and the next statement takes every waiting
//! append (one per stream, in arrival order) as one group. An append that finds nothing
//! running runs alone, as `append_one.sql`, with nothing added but a queue visit. A statement
//! still running after [`SLOT_PATIENCE`] (one append stuck behind a stream's lock) lets the
//! next group start beside it.
//!
//! A group is all-or-nothing in the database, but its appends are not in their answers: when
//! the group statement fails for a reason one append may cause (an event id already stored, a
//! stream's lock not granted within the patience), every append of the group whose caller still
//! waits is run again alone, so each gets the answer it would have got by itself.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use sqlx::types::Json;
use sqlx::PgPool;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// What an append statement returns: the stream's new version and the positions, or NULLs when
/// the stream was not at the expected version.
pub(super) type AppendRow = (Option<i64>, Option<Vec<i64>>);

/// Single-event append statements one store runs at once: one, while the next group gathers.
/// Measured with 8 writers on 2 cores (README "Appends"): 1 in flight made groups of 7.5 and
/// ran at 0.77-0.88x of the plain INSERT, 2 made groups of 5 at 0.66-0.67x, 4 and 8 less.
const STATEMENTS_IN_FLIGHT: usize = 1;

/// The most appends one group carries (its locks are held until it commits).
const MAX_GROUP: usize = 64;

/// How long a statement keeps the slot before the next group may start beside it. A group
/// also gives up a stream's lock after this long (`lock_timeout` in `append_group`) and its
/// appends run alone, each waiting only for its own stream.
const SLOT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// One event for one stream, owned: it may be stored by another caller's group.
#[derive(Debug)]
pub(super) struct SingleAppend {
    pub clinic: String,
    pub stream: String,
    pub category: String,
    pub expected: Option<i64>,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    pub data: serde_json::Value,
    pub metadata: serde_json::Value,
    pub digest: Vec<u8>,
}

/// The appends waiting for a statement, and the statements' permits.
#[derive(Debug)]
pub(super) struct GroupCommit {
    queue: Mutex<Queue>,
    statements: Arc<Semaphore>,
}

#[derive(Debug, Default)]
struct Queue {
    next_ticket: u64,
    waiting: VecDeque<Waiting>,
}

#[derive(Debug)]
struct Waiting {
    ticket: u64,
    append: SingleAppend,
    reply: oneshot::Sender<Result<AppendRow, sqlx::Error>>,
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self {
            queue: Mutex::default(),
            statements: Arc::new(Semaphore::new(STATEMENTS_IN_FLIGHT)),
        }
    }
}

impl GroupCommit {
    /// Stores `append`, alone or in a group, and answers as `append_one.sql` would.
    pub(super) async fn append(
        &self,
        pool: &PgPool,
        append: SingleAppend,
    ) -> Result<AppendRow, sqlx::Error> {
        let (reply, answer) = oneshot::channel();
        let ticket = {
            let mut queue = self.lock();
            let ticket = queue.next_ticket;
            queue.next_ticket += 1;
            queue.waiting.push_back(Waiting {
                ticket,
                append,
                reply,
            });
            ticket
        };
        // Dropped with this future: a caller that gave up takes its append off the queue
        // rather than leave it to be stored whenever the next append comes along.
        let _withdraw = Withdraw {
            commit: self,
            ticket,
        };
        let mut answer = answer;
        loop {
            // Wait for a statement slot, or for another caller's group to answer this append.
            let permit = tokio::select! {
                biased;
                answered = &mut answer => {
                    return answered.unwrap_or(Err(sqlx::Error::WorkerCrashed));
                }
                permit = Arc::clone(&self.statements).acquire_owned() => {
                    permit.expect("the semaphore is never closed")
                }
            };
            let group = {
                let mut queue = self.lock();
                if queue.waiting.iter().any(|w| w.ticket == ticket) {
                    queue.take_group()
                } else {
                    // Another caller's group took this append; its answer is on the way.
                    Vec::new()
                }
            };
            let mine = group.iter().any(|w| w.ticket == ticket);
            match group.len() {
                0 => {
                    drop(permit);
                    return answer.await.unwrap_or(Err(sqlx::Error::WorkerCrashed));
                }
                1 if mine => {
                    let alone = group.into_iter().next().expect("one append");
                    let mut slot = Some(permit);
                    return within_patience(&mut slot, run_alone(pool, &alone.append)).await;
                }
                _ => {
                    // Other callers' appends: stored by a task of their own, so that this
                    // caller giving up cannot lose them. Each member, this caller included,
                    // is answered through its channel as soon as its answer is known.
                    let pool = pool.clone();
                    drop(tokio::spawn(async move {
                        run_group(&pool, group, permit).await;
                    }));
                }
            }
            // Either this append is in the group (its answer will come) or it waited behind an
            // earlier one to the same stream (its turn is next): wait for whichever is first.
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Queue {
    /// The waiting appends in arrival order, at most one per stream (a later append to a
    /// stream waits for the next group, behind the earlier one), at most [`MAX_GROUP`].
    fn take_group(&mut self) -> Vec<Waiting> {
        let mut streams = HashSet::new();
        let mut group = Vec::new();
        let mut left = VecDeque::with_capacity(self.waiting.len());
        for waiting in self.waiting.drain(..) {
            if group.len() < MAX_GROUP
                && streams.insert((waiting.append.clinic.clone(), waiting.append.stream.clone()))
            {
                group.push(waiting);
            } else {
                left.push_back(waiting);
            }
        }
        self.waiting = left;
        group
    }
}

/// Takes a caller's append off the queue if no group has taken it yet.
struct Withdraw<'a> {
    commit: &'a GroupCommit,
    ticket: u64,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.commit
            .lock()
            .waiting
            .retain(|w| w.ticket != self.ticket);
    }
}

/// Stores a group and answers each of its callers. When the group statement fails for a reason
/// one of its appends may have caused, each append is run again alone (concurrently, outside
/// the statement slot) for its own answer; otherwise every member gets the failure.
async fn run_group(pool: &PgPool, group: Vec<Waiting>, permit: OwnedSemaphorePermit) {
    let mut slot = Some(permit);
    let result = within_patience(&mut slot, run_statement(pool, &group)).await;
    // The slot is held until the answers are sent. The group's callers still queue for it, and
    // by the time it has passed through them the appends they make next have arrived and form
    // the next group. Measured with 8 writers: 0.72-0.90x of the plain INSERT; releasing the
    // slot before answering, 0.61-0.62x; taking callers out of the queue as soon as a group
    // took their append made groups of 1 and 7 alternate, 0.55-0.60x.
    match result {
        Ok(rows) => {
            let mut answers: Vec<Option<AppendRow>> = vec![None; group.len()];
            for (place, version, position) in rows {
                if let Some(answer) = usize::try_from(place - 1)
                    .ok()
                    .and_then(|i| answers.get_mut(i))
                {
                    *answer = Some((version, position.map(|p| vec![p])));
                }
            }
            for (waiting, answer) in group.into_iter().zip(answers) {
                let _ = waiting.reply.send(answer.ok_or(sqlx::Error::RowNotFound));
            }
        }
        Err(error) if one_append_may_cause(&error) => {
            // Alone, each waits only for its own stream: the next group need not wait too.
            drop(slot.take());
            // Nothing of the group was stored: a caller that has given up meanwhile is not
            // stored either.
            let alone = group
                .into_iter()
                .filter(|waiting| !waiting.reply.is_closed())
                .map(|waiting| async move {
                    let row = run_alone(pool, &waiting.append).await;
                    let _ = waiting.reply.send(row);
                });
            futures::future::join_all(alone).await;
        }
        Err(error) => {
            tracing::warn!(error = %error, appends = group.len(), "a group of appends failed");
            let failures = crate::db::failure_for_each(error, group.len());
            for (waiting, failure) in group.into_iter().zip(failures) {
                let _ = waiting.reply.send(Err(failure));
            }
        }
    }
}

/// Whether a group statement's failure may come from one of its appends (a stored event id,
/// bad data, a deadlock or a lock not granted in time), so that each deserves a try alone.
/// Anything else (no connection, a closed pool, a lost server) would fail each of them again.
fn one_append_may_cause(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = error else {
        return false;
    };
    let code = db.code().unwrap_or_default();
    ["21", "22", "23", "40"]
        .iter()
        .any(|class| code.starts_with(class))
        || code == "55P03"
}

/// Runs `statement`, giving the statement slot up if it takes longer than [`SLOT_PATIENCE`]:
/// an append stuck behind a stream's lock does not hold every other append of the store.
async fn within_patience<T>(
    slot: &mut Option<OwnedSemaphorePermit>,
    statement: impl std::future::Future<Output = T>,
) -> T {
    tokio::pin!(statement);
    tokio::select! {
        done = &mut statement => done,
        () = tokio::time::sleep(SLOT_PATIENCE) => {
            slot.take();
            statement.await
        }
    }
}

/// `append_group` over the group's appends: (place, new version, position) per append.
async fn run_statement(
    pool: &PgPool,
    group: &[Waiting],
) -> Result<Vec<(i64, Option<i64>, Option<i64>)>, sqlx::Error> {
    let column = |f: fn(&SingleAppend) -> &str| -> Vec<&str> {
        group.iter().map(|w| f(&w.append)).collect()
    };
    sqlx::query_as(include_str!("sql/append_group.sql"))
        .bind(column(|a| a.clinic.as_str()))
        .bind(column(|a| a.stream.as_str()))
        .bind(column(|a| a.category.as_str()))
        .bind(group.iter().map(|w| w.append.expected).collect::<Vec<_>>())
        .bind(group.iter().map(|w| w.append.event_id).collect::<Vec<_>>())
        .bind(column(|a| a.event_type.as_str()))
        .bind(
            group
                .iter()
                .map(|w| w.append.schema_version)
                .collect::<Vec<_>>(),
        )
        .bind(
            group
                .iter()
                .map(|w| Json(&w.append.data))
                .collect::<Vec<_>>(),
        )
        .bind(
            group
                .iter()
                .map(|w| Json(&w.append.metadata))
                .collect::<Vec<_>>(),
        )
        .bind(group.iter().map(|w| &w.append.digest).collect::<Vec<_>>())
        .fetch_all(pool)
        .await
}

/// `append_one.sql`: one append by itself.
async fn run_alone(pool: &PgPool, append: &SingleAppend) -> Result<AppendRow, sqlx::Error> {
    sqlx::query_as(include_str!("sql/append_one.sql"))
        .bind(&append.clinic)
        .bind(&append.stream)
        .bind(&append.category)
        .bind(append.expected)
        .bind(append.event_id)
        .bind(&append.event_type)
        .bind(append.schema_version)
        .bind(Json(&append.data))
        .bind(Json(&append.metadata))
        .bind(&append.digest)
        .fetch_one(pool)
        .await
}
