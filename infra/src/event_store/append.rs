//! Appending: one round trip to the `append_to_stream` SQL function, which takes a per-stream
//! lock, checks the expected version and idempotency, chains the hashes and notifies.

use sqlx::types::Json;
use uuid::Uuid;

use super::{hash, EventStore, EventStoreError, ExpectedVersion, NewEvent, StreamId};
use crate::clinic::ClinicId;

/// Where an append's events landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    /// The stream's version after the append (its last event's version).
    pub stream_version: u64,
    /// The global positions of the appended events, in order.
    pub positions: Vec<i64>,
    /// True when every event id was already stored: a retried request, nothing stored again.
    pub duplicate: bool,
}

impl AppendResult {
    /// The position of the last appended event: what a reader must reach to see this write.
    pub fn last_position(&self) -> i64 {
        self.positions.last().copied().unwrap_or(0)
    }
}

type AppendRow = (String, Option<i64>, Option<Vec<i64>>);

impl EventStore {
    /// Appends `events` to `stream` of `clinic` atomically, if the stream is at `expected`.
    ///
    /// A retry of an append that was stored (same event ids) returns the original result with
    /// `duplicate: true` and stores nothing.
    pub async fn append(
        &self,
        clinic: &ClinicId,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult, EventStoreError> {
        if events.is_empty() || events.len() > Self::MAX_BATCH {
            return Err(EventStoreError::BatchSize {
                count: events.len(),
                max: Self::MAX_BATCH,
            });
        }
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        let schema_versions: Vec<i32> =
            events.iter().map(|e| i32::from(e.schema_version)).collect();
        let data: Vec<Json<&serde_json::Value>> = events.iter().map(|e| Json(&e.data)).collect();
        let metadata: Vec<serde_json::Value> = events
            .iter()
            .map(|e| serde_json::to_value(&e.metadata))
            .collect::<Result<_, _>>()
            .expect("metadata is plain strings and uuids");
        let digests: Vec<Vec<u8>> = events
            .iter()
            .zip(&metadata)
            .map(|(e, metadata)| {
                hash::digest(&hash::Content {
                    clinic: clinic.as_str(),
                    stream_id: stream.as_str(),
                    event_id: e.event_id,
                    event_type: &e.event_type,
                    schema_version: i32::from(e.schema_version),
                    data: &e.data,
                    metadata,
                })
                .to_vec()
            })
            .collect();
        let metadata: Vec<Json<&serde_json::Value>> = metadata.iter().map(Json).collect();

        let row: AppendRow = sqlx::query_as(include_str!("sql/append.sql"))
            .bind(clinic.as_str())
            .bind(stream.as_str())
            .bind(stream.category())
            .bind(expected.as_sql())
            .bind(&ids)
            .bind(&types)
            .bind(&schema_versions)
            .bind(&data)
            .bind(&metadata)
            .bind(&digests)
            .fetch_one(&self.pool)
            .await
            .map_err(|error| match &error {
                sqlx::Error::Database(db) if db.constraint() == Some("events_event_id_key") => {
                    EventStoreError::Duplicate { event_id: ids[0] }
                }
                _ => EventStoreError::Database(error),
            })?;

        let (outcome, stream_version, positions) = row;
        let stream_version = stream_version.unwrap_or(0) as u64;
        match outcome.as_str() {
            "conflict" => Err(EventStoreError::Conflict {
                stream: stream.clone(),
                expected,
                actual: stream_version,
            }),
            duplicate_or_appended => {
                let result = AppendResult {
                    stream_version,
                    positions: positions.unwrap_or_default(),
                    duplicate: duplicate_or_appended == "duplicate",
                };
                if !result.duplicate {
                    self.notifier.appended(clinic, result.last_position());
                    metrics::counter!("clinic_events_appended_total")
                        .increment(result.positions.len() as u64);
                }
                Ok(result)
            }
        }
    }
}
