//! The mail outbox: every email the service sends is first a row of the `outbox` table,
//! written from the event log, then delivered by a worker. No email is lost (the row waits
//! until it is sent, retried, cancelled or dead-lettered) or queued twice (one row per
//! causing event and kind).
//!
//! - [`projection`]: the `outbox` projection ([`ProjectionName::Outbox`]), run by the
//!   projections' runner with its own checkpoint: member events become rows by the pure rules
//!   of [`fold`] (which email, to whom, under which consent; what a revocation cancels).
//! - [`worker`]: claims due rows (`FOR UPDATE SKIP LOCKED`), re-checks consent against the
//!   log, sends through [`crate::mailer::Mailer`], retries with capped exponential backoff and
//!   jitter, dead-letters after a bounded number of attempts ([`try_execute_task`],
//!   [`spawn_workers`], [`drain`]); `server_gate` pauses a process's loops while the SMTP
//!   server fails.
//! - For admins: [`dead_letters`], [`depth`], and the metrics `clinic_outbox_dead_total`,
//!   `clinic_outbox_sent_total`, `clinic_outbox_cancelled_total` (counters) and
//!   `clinic_outbox_pending`, `clinic_outbox_dead` (gauges, which the API's `/metrics` reads
//!   from [`depth`] when scraped).
//! - [`spawn`]: what `clinic serve` starts.

pub mod fold;
pub(crate) mod projection;
mod server_gate;
mod staff;
#[cfg(test)]
mod tests;
pub mod worker;

use clinic_domain::{ConsentId, MemberId};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::clinic::ClinicId;
use crate::config::Config;
use crate::keyring::Keyring;
use crate::mailer::{EmailKind, Mailer, MailerError};
use crate::projections::{ProjectionName, ProjectionOptions};

pub use fold::CancelReason;
pub use staff::{sync_staff_directory, InvalidStaffDirectory, StaffDirectory, ANY_CLINIC};
pub use worker::{
    drain, spawn_workers, try_execute_task, DeadCause, Drained, ExecutionOutcome, RetryPolicy,
    WorkerOptions,
};

/// Why a delivery task failed (it is rolled back: the email stays pending).
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The database failed.
    #[error("the outbox's database failed")]
    Database(#[from] sqlx::Error),
    /// A stored value is not one this build knows.
    #[error("outbox.{0} holds a value this build does not know")]
    Corrupt(&'static str),
    /// The task's own tokio task panicked or was cancelled by the runtime.
    #[error("the delivery task did not finish")]
    TaskFailed,
}

/// Why the outbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The SMTP settings are unusable.
    #[error(transparent)]
    Mailer(#[from] MailerError),
    /// The staff directory could not be written.
    #[error("could not store the staff directory")]
    Database(#[from] sqlx::Error),
}

/// An email that will not be sent: what admins see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The outbox row.
    pub id: Uuid,
    /// The member it is about.
    pub member_id: MemberId,
    /// Which email.
    pub kind: EmailKind,
    /// Attempts made.
    pub attempts: i32,
    /// The last failure's category and SMTP code (no personal data).
    pub last_error: Option<String>,
    /// Its Message-ID.
    pub message_id: String,
    /// When it was queued.
    pub created_at: OffsetDateTime,
    /// When it was dead-lettered.
    pub dead_since: OffsetDateTime,
}

/// Puts a dead letter of `clinic` back in the queue (an admin fixed what killed it); false when
/// `id` names no dead letter of that clinic (or its member was erased meanwhile).
pub async fn requeue_dead_letter(
    pool: &PgPool,
    clinic: &ClinicId,
    id: Uuid,
) -> Result<bool, OutboxError> {
    let requeued: Option<Uuid> =
        sqlx::query_scalar(include_str!("outbox/sql/requeue_dead_letter.sql"))
            .bind(clinic.as_str())
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(requeued.is_some())
}

/// The most recent dead letters of `clinic`, at most `limit`.
pub async fn dead_letters(
    pool: &PgPool,
    clinic: &ClinicId,
    limit: i64,
) -> Result<Vec<DeadLetter>, OutboxError> {
    let rows = sqlx::query(include_str!("outbox/sql/dead_letters.sql"))
        .bind(clinic.as_str())
        .bind(limit.clamp(0, 10_000))
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            Ok(DeadLetter {
                id: row.try_get("id")?,
                member_id: MemberId::new(row.try_get("member_id")?),
                kind: kind.parse().map_err(|()| OutboxError::Corrupt("kind"))?,
                attempts: row.try_get("attempts")?,
                last_error: row.try_get("last_error")?,
                message_id: row.try_get("message_id")?,
                created_at: row.try_get("created_at")?,
                dead_since: row.try_get("updated_at")?,
            })
        })
        .collect()
}

/// One email about a member, as the member's record shows it: 42 CFR Part 2 asks that each sent
/// email name the consent that allowed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEmail {
    /// The outbox row.
    pub id: Uuid,
    /// Which email.
    pub kind: EmailKind,
    /// `pending`, `sent`, `cancelled` or `dead`.
    pub status: String,
    /// The consent that allowed it (none for a notice to staff).
    pub consent_id: Option<ConsentId>,
    /// Why it will not be sent, if cancelled.
    pub cancel_reason: Option<String>,
    /// When it was queued.
    pub queued_at: OffsetDateTime,
    /// When the SMTP server accepted it.
    pub sent_at: Option<OffsetDateTime>,
}

/// Every email about `member` in `clinic`, oldest first.
pub async fn emails_of(
    pool: &PgPool,
    clinic: &ClinicId,
    member: MemberId,
) -> Result<Vec<MemberEmail>, OutboxError> {
    let rows = sqlx::query(include_str!("outbox/sql/member_emails.sql"))
        .bind(clinic.as_str())
        .bind(member.as_uuid())
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            let consent: Option<Uuid> = row.try_get("consent_id")?;
            Ok(MemberEmail {
                id: row.try_get("id")?,
                kind: kind.parse().map_err(|()| OutboxError::Corrupt("kind"))?,
                status: row.try_get("status")?,
                consent_id: consent.map(ConsentId::new),
                cancel_reason: row.try_get("cancel_reason")?,
                queued_at: row.try_get("created_at")?,
                sent_at: row.try_get("sent_at")?,
            })
        })
        .collect()
}

/// How much mail waits, across clinics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxDepth {
    /// Pending emails (due now or waiting for a retry).
    pub pending: i64,
    /// Pending emails due now.
    pub due: i64,
    /// Dead letters.
    pub dead: i64,
}

/// The outbox's depth now.
pub async fn depth(pool: &PgPool) -> Result<OutboxDepth, OutboxError> {
    let (pending, due, dead) = sqlx::query_as(include_str!("outbox/sql/depth.sql"))
        .fetch_one(pool)
        .await?;
    Ok(OutboxDepth { pending, due, dead })
}

/// Starts the outbox for `clinic serve`: stores the staff directory, runs the `outbox`
/// projection (one leader across processes, like the others) and, when `CLINIC_SMTP_URL` is
/// set, `outbox_concurrency` delivery loops. Without it mail waits in the outbox. Every task
/// stops when `stop` turns true.
pub async fn spawn(
    pool: &PgPool,
    keyring: &Keyring,
    config: &Config,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, SpawnError> {
    let mailer = Mailer::from_config(config)?;
    sync_staff_directory(pool, &config.staff_emails).await?;
    let mut tasks = vec![tokio::spawn(crate::projections::run(
        pool.clone(),
        keyring.clone(),
        ProjectionName::Outbox,
        ProjectionOptions::default(),
        stop.clone(),
    ))];
    match mailer {
        Some(mailer) => {
            let options = WorkerOptions::from_config(config);
            tracing::info!(
                concurrency = options.concurrency,
                "the outbox worker is sending mail"
            );
            tasks.extend(spawn_workers(pool, &mailer, &options, stop));
        }
        None => tracing::info!("CLINIC_SMTP_URL is not set: mail waits in the outbox"),
    }
    Ok(tasks)
}
