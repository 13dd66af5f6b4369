//! Integrity: recompute every hash chain and name the streams that no longer match.

use super::{EventStore, EventStoreError, Scope};

/// The outcome of an integrity check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityReport {
    /// Streams examined.
    pub streams_checked: i64,
    /// Events whose hash was recomputed.
    pub events_checked: i64,
    /// `clinic/stream_id` of every stream whose chain is broken, sorted.
    pub broken_streams: Vec<String>,
}

impl IntegrityReport {
    /// True when no stream is broken.
    pub fn ok(&self) -> bool {
        self.broken_streams.is_empty()
    }
}

impl EventStore {
    /// Recomputes the hash chain of every stream in `scope` (in the database, next to the data:
    /// nothing is shipped to the client but the verdict).
    pub async fn verify(&self, scope: &Scope) -> Result<IntegrityReport, EventStoreError> {
        let (streams_checked, events_checked, broken_streams): (i64, i64, Vec<String>) =
            sqlx::query_as(include_str!("sql/verify.sql"))
                .bind(scope.clinic())
                .fetch_one(&self.pool)
                .await
                .map_err(EventStoreError::Database)?;
        Ok(IntegrityReport {
            streams_checked,
            events_checked,
            broken_streams,
        })
    }
}
