//! The imperative shell around the pure `clinic-domain` crate: everything that touches
//! PostgreSQL, the network or the clock lives here.
//!
//! Principal pieces:
//! - [`event_store::EventStore`]: the append-only log (append with optimistic concurrency,
//!   idempotent retries, tamper-evident hash chains, commit-safe reading, live notification);
//! - [`commands::CommandHandler`]: load a stream, `decide`, append with the expected version;
//! - [`codec`]: domain events to rows and back (upcasting; the encryption boundary);
//! - [`config::Config`]: the service's one typed configuration, read from the environment;
//! - [`db`]: creating the database and running the migrations ([`MIGRATOR`]);
//! - [`outbox`] and [`mailer`]: emails queued from the log, delivered over SMTP.

pub mod clinic;
pub mod codec;
pub mod commands;
pub mod config;
pub mod db;
pub mod event_store;
pub mod mailer;
pub mod outbox;
pub mod projections;

/// The SQL migrations in `migrations/`, embedded at compile time so the binary migrates itself.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// An error and its sources on one line (`a: b: c`), for logs from background loops.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
