//! Delivering the outbox, after zero-to-production's delivery worker: a task takes one due
//! email, checks the member's consent against the log as it is now, sends, and records the
//! outcome; tasks return an [`ExecutionOutcome`]; [`try_execute_task`] is what tests call.
//!
//! One change to that pattern, for a reason of this codebase: the task does not hold its
//! transaction open while it talks to the SMTP server. Subscribers of the log read only events
//! older than the oldest running transaction (commit-safe reading, see `events` in the first
//! migration), and a row lock gives a transaction an id, so a send held in a transaction would
//! stall every projection for as long as the server takes (up to the SMTP timeout, over and
//! over while a server hangs). Instead a task is three short steps:
//!
//! 1. claim: one statement takes the oldest due pending row `FOR UPDATE SKIP LOCKED` (so
//!    concurrent workers, in any number of processes, each take a different row), counts the
//!    attempt and leases the row by moving its `next_attempt_at` to the end of the lease
//!    ([`LEASE`]); the new `next_attempt_at` is the task's claim token;
//! 2. check and send, outside any transaction: the member's stream, read from the log by the
//!    claim's statement (not from a projection, which may lag a revocation), says whether the
//!    email may still go; then it goes to the server, within [`SEND_DEADLINE`];
//! 3. record: one statement marks the row sent, retried, dead or cancelled, only if the claim
//!    token still matches (a worker whose lease ran out records nothing over its successor).
//!
//! Bookkeeping without the WAL flush: the claim and the record statements each set
//! `synchronous_commit = off` for their own implicit transaction (`set_config(.., true)` in a
//! `no_flush` CTE; one round trip, the session's setting untouched), as the projection runner's
//! pages do. Waiting for the flush cost 2 to 12 ms per statement on a busy server, more than
//! the send. A PostgreSQL crash may lose the last few hundred milliseconds of them, which can
//! only make an email go again with the same Message-ID, never lose one; a process crash loses
//! nothing.
//!
//! Delivery is at least once, exactly once in every case but one: a process killed (or
//! PostgreSQL crashing, or failing for longer than the lease) between the server's acceptance
//! of an email and step 3 sends it again when the lease ends, with the same Message-ID, so the
//! copy can be recognised. (Step 3 of a sent email is tried again while the lease lasts.) A worker that
//! is merely cancelled (its task dropped or aborted, the service stopping) cannot cause that:
//! each task runs in a task of its own that finishes the email it started.

use std::sync::Arc;
use std::time::Duration;

use clinic_domain::{ConsentId, MemberEvent, MemberId};
use rand::Rng;
use sqlx::{FromRow, PgPool, Row};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::fold::{self, CancelReason, MemberMail};
use super::server_gate::{Admission, Report, ServerGate};
use super::OutboxError;
use crate::event_store::RecordedEvent;
use crate::mailer::{
    EmailKind, Mailer, OutgoingEmail, SendError, ACCEPTANCE_TIMEOUT, SMTP_TIMEOUT,
};

/// How long a claimed email is leased to its worker: no other worker takes it meanwhile. Well
/// above [`SEND_DEADLINE`]; a worker that dies holding a lease leaves the email to be retried
/// when it ends.
pub const LEASE: Duration = Duration::from_secs(300);

/// How long one send may take, connecting included, before it counts as a failed attempt:
/// past the mailer's own timeouts, a last guard.
pub const SEND_DEADLINE: Duration = Duration::from_secs(240);

// The mailer gives up first, and the lease outlasts the send with a minute to record it.
const _: () = assert!(
    SMTP_TIMEOUT.as_secs() + ACCEPTANCE_TIMEOUT.as_secs() < SEND_DEADLINE.as_secs()
        && SEND_DEADLINE.as_secs() + 60 <= LEASE.as_secs()
);

/// When to try a failed email again, and when to give up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The delay after the first failure; it doubles with each further one.
    pub base: Duration,
    /// The delay never exceeds this (`CLINIC_OUTBOX_MAX_BACKOFF_MS`).
    pub max_backoff: Duration,
    /// After this many failed attempts the email is dead (`CLINIC_OUTBOX_MAX_ATTEMPTS`).
    pub max_attempts: u32,
}

/// The default `CLINIC_OUTBOX_MAX_ATTEMPTS`. With [`DEFAULT_MAX_BACKOFF`] a failing email is
/// retried for at least a day (the doublings from 1 s reach the hour cap in about 68 minutes,
/// then hourly tries; jitter shortens a delay by up to half): an SMTP outage of a day, or a
/// night's wait for a fixed password, loses no email.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 60;

/// The default `CLINIC_OUTBOX_MAX_BACKOFF_MS`: an hour.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(3600);

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max_backoff: DEFAULT_MAX_BACKOFF,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

impl RetryPolicy {
    /// The policy the configuration asks for.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            max_backoff: config.outbox_max_backoff,
            max_attempts: config.outbox_max_attempts,
            ..Self::default()
        }
    }

    /// The delay after `failures` failed attempts (1 or more): `base * 2^(failures - 1)`,
    /// capped at `max_backoff`, then jittered down by up to half with `jitter` in `[0, 1]`
    /// ("equal jitter": workers that failed together do not retry together, and no retry
    /// comes sooner than half the backoff).
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let exponent = failures.saturating_sub(1).min(30);
        let backoff = self
            .base
            .saturating_mul(1_u32 << exponent)
            .min(self.max_backoff);
        backoff.mul_f64(1.0 - jitter.clamp(0.0, 1.0) / 2.0)
    }

    /// [`Self::delay`] with a random jitter: the delay a worker waits.
    pub(crate) fn jittered_delay(&self, failures: u32) -> Duration {
        self.delay(failures, rand::thread_rng().gen_range(0.0..=1.0))
    }
}

/// How a worker loop runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerOptions {
    /// Tasks one process runs at once (`CLINIC_OUTBOX_CONCURRENCY`).
    pub concurrency: usize,
    /// How long a loop sleeps when nothing is due.
    pub idle_poll: Duration,
    /// How long a loop sleeps after a database error.
    pub error_pause: Duration,
    /// Retries and dead-lettering.
    pub retry: RetryPolicy,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            idle_poll: Duration::from_secs(1),
            error_pause: Duration::from_secs(1),
            retry: RetryPolicy::default(),
        }
    }
}

impl WorkerOptions {
    /// The options the configuration asks for.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            concurrency: config.outbox_concurrency,
            retry: RetryPolicy::from_config(config),
            ..Self::default()
        }
    }
}

/// Why an email was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadCause {
    /// The server answered: it refused the email for good (a 5xx to its recipient or its
    /// content), or its attempts ran out on failures of this email.
    Refused,
    /// Its attempts ran out while the server itself failed (no connection, a refused session).
    ServerTrouble,
    /// It could not be composed (an unusable address, a template that fails): never sent.
    Unsendable,
    /// Its member's stream could not be read, so no consent could be checked: never sent.
    Unreadable,
}

/// What one task did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionOutcome {
    /// No pending email is due.
    EmptyQueue,
    /// The email was accepted by the SMTP server and marked sent.
    Sent {
        /// The outbox row.
        id: Uuid,
    },
    /// Sending failed; the email is due again after `delay`.
    Retrying {
        /// The outbox row.
        id: Uuid,
        /// Attempts made so far.
        attempts: u32,
        /// Until the next attempt.
        delay: Duration,
        /// The server failed, not this email (no connection, a refused greeting or login):
        /// every email would fail now, so the worker waits before trying another.
        server_trouble: bool,
    },
    /// The email could not be checked (its member's stream holds an event this build cannot
    /// read) and waits, without the server having been reached, until `delay` has passed.
    Held {
        /// The outbox row.
        id: Uuid,
        /// Attempts made so far.
        attempts: u32,
        /// Until the next attempt.
        delay: Duration,
    },
    /// Sending failed for the last time (or for good): the email is dead-lettered.
    Dead {
        /// The outbox row.
        id: Uuid,
        /// Attempts made.
        attempts: u32,
        /// Why.
        cause: DeadCause,
    },
    /// The email may no longer go (consent revoked or expired, member erased, stale).
    Cancelled {
        /// The outbox row.
        id: Uuid,
        /// Why.
        reason: CancelReason,
    },
}

/// Claims one due email, checks it may still go, sends it and records the outcome; see the
/// module's doc.
///
/// The task runs in a task of its own: dropping this future (a cancelled worker) lets the
/// email in flight finish and be recorded rather than leaving it sent but pending.
pub async fn try_execute_task(
    pool: &PgPool,
    mailer: &Mailer,
    policy: &RetryPolicy,
) -> Result<ExecutionOutcome, OutboxError> {
    let task = tokio::spawn(execute_task(pool.clone(), mailer.clone(), policy.clone()));
    task.await.map_err(|_| OutboxError::TaskFailed)?
}

struct Task {
    id: Uuid,
    /// The lease's end, as the claim wrote it: the claim token.
    token: OffsetDateTime,
    clinic: String,
    member_id: MemberId,
    kind: EmailKind,
    recipient: Option<String>,
    consent_id: Option<ConsentId>,
    /// The version of the event that queued it in the member's stream.
    event_version: i64,
    /// Attempts made, this one included.
    attempts: u32,
    send_before: OffsetDateTime,
    message_id: String,
}

async fn execute_task(
    pool: PgPool,
    mailer: Mailer,
    policy: RetryPolicy,
) -> Result<ExecutionOutcome, OutboxError> {
    let Some((task, stream)) = claim(&pool).await? else {
        return Ok(ExecutionOutcome::EmptyQueue);
    };
    let now = OffsetDateTime::now_utc();
    let member = match member_now(&stream) {
        Ok(member) => member,
        Err(position) => {
            // A stored event this build cannot read: no consent can be checked, so the email
            // must not go now. Most often an older release still running beside a newer one
            // (a rolling upgrade) met an event only the newer one writes: the email waits, with
            // the usual backoff, for a worker that can read it, and is dead-lettered (for an
            // admin to see) only when its attempts run out.
            tracing::error!(outbox_id = %task.id, position, attempts = task.attempts, "the member's stream could not be decoded; the email waits");
            if fold::is_stale(task.send_before, now) {
                // Past its sending window it would be cancelled as stale anyway.
                return cancelled(&pool, &task, CancelReason::Stale, false).await;
            }
            if task.attempts < policy.max_attempts {
                let delay = retry_later(&pool, &task, &policy, "undecodable_stream").await?;
                return Ok(ExecutionOutcome::Held {
                    id: task.id,
                    attempts: task.attempts,
                    delay,
                });
            }
            record_dead(&pool, &task, "undecodable_stream").await?;
            return Ok(ExecutionOutcome::Dead {
                id: task.id,
                attempts: task.attempts,
                cause: DeadCause::Unreadable,
            });
        }
    };
    let check = fold::send_check(
        &member,
        task.kind,
        task.consent_id,
        task.event_version,
        task.send_before,
        now,
    )
    .and_then(|()| task.recipient.clone().ok_or(CancelReason::MemberErased));
    let recipient = match check {
        Ok(recipient) => recipient,
        Err(reason) => {
            // The other emails its consent allowed go with it only if that consent lapsed.
            let with_its_consent = matches!(
                reason,
                CancelReason::ConsentRevoked | CancelReason::ConsentExpired
            ) && fold::consent_lapsed(&member, task.consent_id, now)
                .is_some();
            return cancelled(&pool, &task, reason, with_its_consent).await;
        }
    };
    let email = OutgoingEmail {
        to: recipient,
        kind: task.kind,
        message_id: task.message_id.clone(),
    };
    let sent = match tokio::time::timeout(SEND_DEADLINE, mailer.send(&email)).await {
        Ok(sent) => sent,
        Err(_) => Err(SendError::Smtp {
            permanent: false,
            server: true,
            summary: "timeout".to_owned(),
        }),
    };
    let attempts = task.attempts;
    match sent {
        Ok(()) => {
            let recorded = record_sent(&pool, &task, &email.to).await?;
            lease_check(&task, recorded);
            metrics::counter!("clinic_outbox_sent_total").increment(1);
            Ok(ExecutionOutcome::Sent { id: task.id })
        }
        Err(error) if error.is_permanent() || attempts >= policy.max_attempts => {
            record_dead(&pool, &task, &error.summary()).await?;
            tracing::warn!(outbox_id = %task.id, attempts, error = %error.summary(), "an email is dead-lettered");
            Ok(ExecutionOutcome::Dead {
                id: task.id,
                attempts,
                cause: match error {
                    SendError::InvalidRecipient | SendError::Template => DeadCause::Unsendable,
                    _ if error.is_server_trouble() => DeadCause::ServerTrouble,
                    _ => DeadCause::Refused,
                },
            })
        }
        Err(error) => {
            tracing::info!(outbox_id = %task.id, attempts, error = %error.summary(), "an email will be retried");
            let delay = retry_later(&pool, &task, &policy, &error.summary()).await?;
            Ok(ExecutionOutcome::Retrying {
                id: task.id,
                attempts,
                delay,
                server_trouble: error.is_server_trouble(),
            })
        }
    }
}

/// Cancels the task (see [`cancel`]) and counts it: the outcome of an email that may no
/// longer go.
async fn cancelled(
    pool: &PgPool,
    task: &Task,
    reason: CancelReason,
    with_its_consent: bool,
) -> Result<ExecutionOutcome, OutboxError> {
    cancel(pool, task, reason, with_its_consent).await?;
    metrics::counter!("clinic_outbox_cancelled_total").increment(1);
    Ok(ExecutionOutcome::Cancelled {
        id: task.id,
        reason,
    })
}

/// Puts the task back for another attempt after the policy's delay (returned), noting `why`.
async fn retry_later(
    pool: &PgPool,
    task: &Task,
    policy: &RetryPolicy,
    why: &str,
) -> Result<Duration, OutboxError> {
    let delay = policy.jittered_delay(task.attempts);
    let recorded = sqlx::query(include_str!("sql/mark_retry.sql"))
        .bind(task.id)
        .bind(task.token)
        .bind(millis(delay))
        .bind(why)
        .execute(pool)
        .await?;
    lease_check(task, recorded.rows_affected());
    Ok(delay)
}

/// Marks the email sent. The server has accepted it, so a failure to record that would send it
/// again when the lease ends: a database that fails for a moment (a pool timeout, a dropped
/// connection) is tried again, with a growing pause, while the lease lasts.
async fn record_sent(pool: &PgPool, task: &Task, sent_to: &str) -> Result<u64, OutboxError> {
    let mut pause = Duration::from_millis(50);
    loop {
        let recorded = sqlx::query(include_str!("sql/mark_sent.sql"))
            .bind(task.id)
            .bind(task.token)
            .bind(sent_to)
            .execute(pool)
            .await;
        match recorded {
            Ok(recorded) => return Ok(recorded.rows_affected()),
            Err(error) if OffsetDateTime::now_utc() + pause < task.token => {
                tracing::warn!(outbox_id = %task.id, error = %crate::error_chain(&error), "could not record a sent email; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// A record that matched no row: the lease ran out and another worker holds the email now.
fn lease_check(task: &Task, rows: u64) {
    if rows == 0 {
        tracing::warn!(outbox_id = %task.id, "an email's lease ran out before its outcome was recorded");
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Claims one due email and reads its member's stream as the log holds it now, in one
/// statement (`sql/claim.sql`).
async fn claim(pool: &PgPool) -> Result<Option<(Task, Vec<RecordedEvent>)>, OutboxError> {
    let kinds = EmailKind::ALL.map(EmailKind::as_str);
    let rows = sqlx::query(include_str!("sql/claim.sql"))
        .bind(millis(LEASE))
        .bind(&kinds[..])
        .fetch_all(pool)
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let kind: String = row.try_get("kind")?;
    let consent_id: Option<Uuid> = row.try_get("consent_id")?;
    let attempts: i32 = row.try_get("attempts")?;
    let task = Task {
        id: row.try_get("outbox_id")?,
        token: row.try_get("next_attempt_at")?,
        clinic: row.try_get("outbox_clinic")?,
        member_id: MemberId::new(row.try_get("member_id")?),
        kind: kind.parse().map_err(|()| OutboxError::Corrupt("kind"))?,
        recipient: row.try_get("recipient")?,
        consent_id: consent_id.map(ConsentId::new),
        event_version: row.try_get("outbox_event_version")?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        send_before: row.try_get("send_before")?,
        message_id: row.try_get("message_id")?,
    };
    let mut stream = Vec::with_capacity(rows.len());
    for row in &rows {
        if row.try_get::<Option<i64>, _>("position")?.is_some() {
            stream.push(RecordedEvent::from_row(row)?);
        }
    }
    Ok(Some((task, stream)))
}

/// The member as their stream says; `Err(position)` names an event that could not be decoded.
///
/// Read without the member's key: what may stop the email (consents, their expiry, erasure,
/// the stream's progress) is never sealed, and the address comes from the outbox row, so the
/// worker handles no personal field it does not need.
fn member_now(stream: &[RecordedEvent]) -> Result<MemberMail, i64> {
    let no_keys = crate::keyring::KeySet::default();
    let mut mail = MemberMail::default();
    for row in stream {
        match crate::codec::decode::<MemberEvent>(&no_keys, row) {
            Ok(event) => mail = mail.evolve(&event),
            Err(_) => return Err(row.position),
        }
    }
    Ok(mail)
}

/// Cancels the task's row and, `with_its_consent` (its consent is what stopped it: revoked or
/// expired), every other pending email that consent allowed.
async fn cancel(
    pool: &PgPool,
    task: &Task,
    reason: CancelReason,
    with_its_consent: bool,
) -> Result<(), OutboxError> {
    sqlx::query(include_str!("sql/cancel_task.sql"))
        .bind(task.id)
        .bind(reason.as_str())
        .bind(&task.clinic)
        .bind(task.member_id.as_uuid())
        .bind(task.consent_id.map(|c| c.as_uuid()))
        .bind(with_its_consent)
        .bind(task.token)
        .execute(pool)
        .await?;
    Ok(())
}

async fn record_dead(pool: &PgPool, task: &Task, error: &str) -> Result<(), OutboxError> {
    let recorded = sqlx::query(include_str!("sql/mark_dead.sql"))
        .bind(task.id)
        .bind(task.token)
        .bind(error)
        .execute(pool)
        .await?;
    lease_check(task, recorded.rows_affected());
    metrics::counter!("clinic_outbox_dead_total").increment(1);
    Ok(())
}

/// What a [`drain`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    /// Emails sent.
    pub sent: u64,
    /// Failed attempts to be retried, and emails held back for a later attempt.
    pub retrying: u64,
    /// Emails dead-lettered.
    pub dead: u64,
    /// Emails cancelled.
    pub cancelled: u64,
}

impl Drained {
    fn add(&mut self, outcome: &ExecutionOutcome) {
        match outcome {
            ExecutionOutcome::EmptyQueue => {}
            ExecutionOutcome::Sent { .. } => self.sent += 1,
            ExecutionOutcome::Retrying { .. } | ExecutionOutcome::Held { .. } => self.retrying += 1,
            ExecutionOutcome::Dead { .. } => self.dead += 1,
            ExecutionOutcome::Cancelled { .. } => self.cancelled += 1,
        }
    }
}

/// Runs tasks on `concurrency` loops until none is due: what tests, benchmarks and one-off
/// tools call to empty the outbox (emails waiting for a retry's delay stay).
pub async fn drain(
    pool: &PgPool,
    mailer: &Mailer,
    policy: &RetryPolicy,
    concurrency: usize,
) -> Result<Drained, OutboxError> {
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (pool, mailer, policy) = (pool.clone(), mailer.clone(), policy.clone());
        loops.spawn(async move {
            let mut drained = Drained::default();
            loop {
                match try_execute_task(&pool, &mailer, &policy).await? {
                    ExecutionOutcome::EmptyQueue => return Ok::<_, OutboxError>(drained),
                    outcome => drained.add(&outcome),
                }
            }
        });
    }
    let mut total = Drained::default();
    while let Some(result) = loops.join_next().await {
        let drained = result.map_err(|_| OutboxError::TaskFailed)??;
        total.sent += drained.sent;
        total.retrying += drained.retrying;
        total.dead += drained.dead;
        total.cancelled += drained.cancelled;
    }
    Ok(total)
}

/// Starts `options.concurrency` worker loops sharing one [`ServerGate`]: each takes tasks back
/// to back while emails are due, naps when none is, pauses after a database error, and they
/// stop when `stop` turns true (after the task in flight).
///
/// While the SMTP server itself fails (no connection, a refused greeting or login), every loop
/// waits with the retry backoff, growing while the trouble lasts, and then one loop alone tries
/// the server again: a wrong password is tried a few times an hour per process, not once per
/// queued email or per loop (a mail provider locks an account that fails its login too often),
/// and the waiting emails' attempts do not run out meanwhile.
pub fn spawn_workers(
    pool: &PgPool,
    mailer: &Mailer,
    options: &WorkerOptions,
    stop: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let gate = Arc::new(ServerGate::new(options.retry.clone(), options.idle_poll));
    (0..options.concurrency)
        .map(|_| {
            tokio::spawn(worker_loop(
                pool.clone(),
                mailer.clone(),
                options.clone(),
                gate.clone(),
                stop.clone(),
            ))
        })
        .collect()
}

async fn worker_loop(
    pool: PgPool,
    mailer: Mailer,
    options: WorkerOptions,
    gate: Arc<ServerGate>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let admission = gate.admit();
        if let Admission::Wait(pause) = admission {
            if crate::leadership::sleep_or_stop(&mut stop, pause).await {
                return;
            }
            continue;
        }
        let pass = gate.pass(admission);
        let outcome = try_execute_task(&pool, &mailer, &options.retry).await;
        let pause = match &outcome {
            Ok(ExecutionOutcome::EmptyQueue) => Some(options.idle_poll),
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(error = %crate::error_chain(error), "the outbox worker failed a task");
                Some(options.error_pause)
            }
        };
        pass.report(what_the_server_did(&outcome));
        if let Some(pause) = pause {
            if crate::leadership::sleep_or_stop(&mut stop, pause).await {
                return;
            }
        }
    }
}

/// What a task's outcome says of the SMTP server, for the gate: only a session the server took
/// part in opens it, only the server's own failure closes it.
fn what_the_server_did(outcome: &Result<ExecutionOutcome, OutboxError>) -> Report {
    match outcome {
        Ok(ExecutionOutcome::Sent { .. }) => Report::Answered,
        Ok(ExecutionOutcome::Retrying { server_trouble, .. }) => {
            if *server_trouble {
                Report::Trouble
            } else {
                Report::Answered
            }
        }
        Ok(ExecutionOutcome::Dead { cause, .. }) => match cause {
            DeadCause::Refused => Report::Answered,
            DeadCause::ServerTrouble => Report::Trouble,
            DeadCause::Unreadable | DeadCause::Unsendable => Report::NotReached,
        },
        Ok(
            ExecutionOutcome::EmptyQueue
            | ExecutionOutcome::Cancelled { .. }
            | ExecutionOutcome::Held { .. },
        )
        | Err(_) => Report::NotReached,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_servers_own_answers_and_failures_move_the_gate() {
        let id = Uuid::nil();
        let dead = |cause| {
            Ok(ExecutionOutcome::Dead {
                id,
                attempts: 3,
                cause,
            })
        };
        let retrying = |server_trouble| {
            Ok(ExecutionOutcome::Retrying {
                id,
                attempts: 1,
                delay: Duration::ZERO,
                server_trouble,
            })
        };
        let cases = [
            (Ok(ExecutionOutcome::Sent { id }), Report::Answered),
            (retrying(false), Report::Answered),
            (retrying(true), Report::Trouble),
            (dead(DeadCause::Refused), Report::Answered),
            (dead(DeadCause::ServerTrouble), Report::Trouble),
            (dead(DeadCause::Unreadable), Report::NotReached),
            (dead(DeadCause::Unsendable), Report::NotReached),
            (
                Ok(ExecutionOutcome::Cancelled {
                    id,
                    reason: CancelReason::ConsentRevoked,
                }),
                Report::NotReached,
            ),
            (
                Ok(ExecutionOutcome::Held {
                    id,
                    attempts: 1,
                    delay: Duration::ZERO,
                }),
                Report::NotReached,
            ),
            (Ok(ExecutionOutcome::EmptyQueue), Report::NotReached),
            (Err(OutboxError::TaskFailed), Report::NotReached),
        ];
        for (outcome, expected) in cases {
            assert_eq!(what_the_server_did(&outcome), expected, "{outcome:?}");
        }
    }

    #[test]
    fn the_backoff_doubles_up_to_its_cap_and_jitter_only_shortens_it_by_half() {
        let policy = RetryPolicy {
            base: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            max_attempts: 8,
        };
        let top: Vec<u128> = (1..=6).map(|n| policy.delay(n, 0.0).as_millis()).collect();
        assert_eq!(top, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.delay(3, 1.0), Duration::from_millis(200));
        assert_eq!(policy.delay(40, 0.5), Duration::from_millis(750));
        for jitter in [0.0, 0.3, 0.9, 1.0, 7.0, -1.0] {
            let d = policy.delay(12, jitter);
            assert!(
                d <= policy.max_backoff && d >= policy.max_backoff / 2,
                "{d:?}"
            );
        }
    }

    #[test]
    fn by_default_a_failing_email_is_retried_for_at_least_a_day() {
        let policy = RetryPolicy::default();
        // The delays between the attempts, every one jittered as short as it can be.
        let shortest: Duration = (1..policy.max_attempts)
            .map(|failures| policy.delay(failures, 1.0))
            .sum();
        assert!(shortest >= Duration::from_secs(24 * 3600), "{shortest:?}");
        // And not past the send window (14 days), when the email is too old to go anyway.
        let longest: Duration = (1..policy.max_attempts)
            .map(|failures| policy.delay(failures, 0.0))
            .sum();
        assert!(longest < Duration::from_secs(14 * 24 * 3600), "{longest:?}");
    }
}
