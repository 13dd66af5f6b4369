//! The imperative shell around the pure `clinic-domain` crate: everything that touches
//! PostgreSQL, the network or the clock lives here.
//!
//! Principal pieces:
//! - [`event_store::EventStore`]: the append-only log (append with optimistic concurrency,
//!   idempotent retries, tamper-evident hash chains, commit-safe reading, live notification);
//! - [`commands::CommandHandler`]: load a stream, `decide`, append with the expected version;
//! - [`codec`]: domain events to rows and back (upcasting; personal fields sealed and opened);
//! - [`keyring`]: per-member data keys behind the master key (crypto-shredding);
//! - [`config::Config`]: the service's one typed configuration, read from the environment;
//! - [`db`]: creating the database and running the migrations ([`MIGRATOR`]);
//! - [`projections`]: the log folded into read-model tables (runner, rebuild, read-your-writes);
//! - [`read_models`]: the queries the API runs over those tables;
//! - [`scheduler`]: the events the passage of time produces (missed check-ins, due follow-ups);
//! - [`background::BackgroundTasks`]: the runners and the scheduler inside `clinic serve`;
//! - [`disclosures`]: a member's accounting of disclosures, from their stream;
//! - [`erasure`]: erasing a member (retention rule, `MemberErased`, key destroyed);
//! - [`demo`]: a realistic generated clinic (`clinic seed-demo`, the rebuild benchmark);
//! - [`outbox`] and [`mailer`]: emails queued from the log, delivered over SMTP.

pub mod access_log;
pub mod background;
pub mod clinic;
pub mod codec;
pub mod commands;
pub mod config;
pub mod db;
pub mod demo;
pub mod disclosures;
pub mod erasure;
pub mod event_store;
pub mod keyring;
pub(crate) mod leadership;
pub mod mailer;
pub mod outbox;
pub mod projections;
pub mod read_models;
pub mod scheduler;

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
