//! The append-only event log in PostgreSQL (tables `streams` and `events`, created by
//! `migrations/*_event_store.sql`).
//!
//! The store knows nothing of the domain's event types: it stores a type name, a schema version
//! and a JSON payload per event, so upcasting and encryption stay with the code that owns the
//! payloads. What it guarantees:
//! - appends to a stream are atomic and checked against an [`ExpectedVersion`];
//! - a retried append (same event ids) stores nothing twice and answers as the original did;
//! - every event carries a SHA-256 hash chained to its stream's previous event ([`verify`]);
//! - subscribers read in commit-safe order ([`LogCursor`]) and never skip a late commit;
//! - every read and append is scoped to one clinic unless the caller asks for [`Scope::All`].

mod append;
mod group_commit;
mod hash;
mod notify;
mod read;
mod verify;

use std::fmt;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

pub use append::AppendResult;
pub use notify::{
    CheckpointWatch, CommitChanges, CommitVersion, EventNotification, Notifications,
    CHECKPOINT_CHANNEL, NOTIFY_CHANNEL,
};
pub use read::{LogCursor, LogPage};
pub use verify::IntegrityReport;

use crate::clinic::ClinicId;

/// A stream's id: `<category>-<id>`, e.g. `member-6f1c…`. The category (the part before the
/// first `-`) groups streams of one kind for operators and projections.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamId(String);

/// Why a stream id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a stream id is `<category>-<id>` with a lowercase category, e.g. `member-<uuid>`")]
pub struct InvalidStreamId;

impl StreamId {
    /// Parses `<category>-<id>`.
    pub fn parse(raw: &str) -> Result<Self, InvalidStreamId> {
        match raw.split_once('-') {
            Some((category, id))
                if !category.is_empty()
                    && !id.is_empty()
                    && category
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_') =>
            {
                Ok(Self(raw.to_owned()))
            }
            _ => Err(InvalidStreamId),
        }
    }

    /// A stream of `category` for an entity id.
    pub fn of(category: &str, id: Uuid) -> Self {
        Self(format!("{category}-{id}"))
    }

    /// The part before the first `-`.
    pub fn category(&self) -> &str {
        self.0.split_once('-').map_or("", |(category, _)| category)
    }

    /// The id as stored in `stream_id` columns.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the writer believes the stream's version to be; the append is refused otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the stream holds (no concurrency check).
    Any,
    /// The stream must not exist yet (its first event).
    NoStream,
    /// The stream's last event must have exactly this version.
    Exactly(u64),
}

impl ExpectedVersion {
    fn as_sql(self) -> Option<i64> {
        match self {
            Self::Any => None,
            Self::NoStream => Some(0),
            Self::Exactly(n) => Some(n as i64),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::NoStream => f.write_str("no stream"),
            Self::Exactly(n) => write!(f, "{n}"),
        }
    }
}

/// Who and what caused an event: kept beside the payload, never inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The staff member (`sub` of their token) or system process (`system:scheduler`).
    pub actor: String,
    /// Shared by every event one request or job caused.
    pub correlation_id: Uuid,
    /// The event or command that caused this one, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// A digest of the request that caused the event, on the first event of a command sent
    /// with an idempotency key ([`crate::commands::CommandContext::request_digest`]): a later
    /// command with that key is its retry only if it is the same request. Sealed under the
    /// member's key where the event concerns a member (the request held their name), so an
    /// erasure leaves nothing to test a guess against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

/// An event to append: its payload already encoded by its owner.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique per event; a retried request reuses it, which makes the retry harmless.
    pub event_id: Uuid,
    /// The stable external name, e.g. `SessionHeld`.
    pub event_type: String,
    /// The version of the payload's shape, for upcasting on read.
    pub schema_version: u16,
    /// The payload.
    pub data: serde_json::Value,
    /// Actor, correlation and causation.
    pub metadata: Metadata,
}

/// An event as stored, with its place in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Global, unique and increasing in insertion order (not commit order; see [`LogCursor`]).
    pub position: i64,
    /// The id of the transaction that stored it, for commit-safe reading.
    pub transaction_id: i64,
    /// The tenant.
    pub clinic: String,
    /// The stream.
    pub stream_id: String,
    /// 1, 2, 3… within the stream, without gaps.
    pub version: i64,
    /// The id the writer gave it.
    pub event_id: Uuid,
    /// The stable external name.
    pub event_type: String,
    /// The payload's shape version.
    pub schema_version: i32,
    /// The payload as stored.
    pub data: serde_json::Value,
    /// Actor, correlation and causation as stored.
    pub metadata: serde_json::Value,
    /// When the append's transaction ran.
    pub recorded_at: OffsetDateTime,
    /// The hash of the stream's previous event (empty for version 1).
    pub prev_hash: Vec<u8>,
    /// The event's link in its stream's hash chain.
    pub hash: Vec<u8>,
}

/// Which clinics a read covers. Only operators' tools and projections ask for [`Scope::All`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One tenant's events.
    Clinic(ClinicId),
    /// Every tenant's events.
    All,
}

impl Scope {
    fn clinic(&self) -> Option<&str> {
        match self {
            Self::Clinic(clinic) => Some(clinic.as_str()),
            Self::All => None,
        }
    }
}

/// Failures callers branch on, and the database's own.
#[derive(Debug, thiserror::Error)]
pub enum EventStoreError {
    /// The stream's version was not the expected one; nothing was written.
    #[error("stream {stream} is at version {actual}, not the expected {expected}")]
    Conflict {
        /// The stream appended to.
        stream: StreamId,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// The stream's version when the append was refused (0: no stream).
        actual: u64,
    },
    /// An event id is already stored by a different append; nothing was written.
    #[error("event {event_id} is already stored by another append")]
    Duplicate {
        /// One of the ids in the refused batch.
        event_id: Uuid,
    },
    /// An append with no events, or more than fit one transaction.
    #[error("an append carries 1 to {max} events, not {count}")]
    BatchSize {
        /// How many events were passed.
        count: usize,
        /// The most one append takes.
        max: usize,
    },
    /// The database failed or was unreachable.
    #[error("the event store's database failed")]
    Database(#[source] sqlx::Error),
}

/// The log, over a connection pool.
#[derive(Debug, Clone)]
pub struct EventStore {
    pool: PgPool,
    notifier: std::sync::Arc<notify::Notifier>,
    group_commit: std::sync::Arc<group_commit::GroupCommit>,
}

impl EventStore {
    /// The most events one append may carry (one transaction; keeps locks short).
    pub const MAX_BATCH: usize = 10_000;

    /// A store over an already migrated database.
    pub fn new(pool: PgPool) -> Self {
        Self {
            notifier: notify::Notifier::new(pool.clone()),
            group_commit: std::sync::Arc::default(),
            pool,
        }
    }

    /// The pool, for the rest of the shell (projections share it).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
