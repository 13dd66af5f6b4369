//! Appending: one prepared statement (`sql/append.sql`, or for a single event
//! `sql/append_one.sql` or its group commit, group_commit.rs) takes the stream's lock, checks
//! the expected version, chains the hashes and stores the events; the store then notifies
//! subscribers. A refused append costs a second query, which tells a retried request (answered
//! as the original was) from a genuine conflict.

use sqlx::types::Json;
use uuid::Uuid;

use super::group_commit::SingleAppend;
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

/// What `sql/stored_append.sql` finds of a refused append's event ids.
type StoredRow = (Option<Vec<i64>>, bool, Option<i64>);

/// Why an append was refused before the store looked its event ids up.
enum Refusal {
    /// The stream was not at the expected version.
    Version,
    /// An event id is already stored.
    EventId,
}

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

        let appended = match events {
            [event] => {
                let single = SingleAppend {
                    clinic: clinic.as_str().to_owned(),
                    stream: stream.as_str().to_owned(),
                    category: stream.category().to_owned(),
                    expected: expected.as_sql(),
                    event_id: event.event_id,
                    event_type: event.event_type.clone(),
                    schema_version: i32::from(event.schema_version),
                    data: event.data.clone(),
                    metadata: metadata.into_iter().next().expect("one event"),
                    digest: digests.into_iter().next().expect("one event"),
                };
                self.group_commit.append(&self.pool, single).await
            }
            _ => {
                sqlx::query_as(include_str!("sql/append.sql"))
                    .bind(clinic.as_str())
                    .bind(stream.as_str())
                    .bind(stream.category())
                    .bind(expected.as_sql())
                    .bind(&ids)
                    .bind(
                        events
                            .iter()
                            .map(|e| e.event_type.as_str())
                            .collect::<Vec<_>>(),
                    )
                    .bind(
                        events
                            .iter()
                            .map(|e| i32::from(e.schema_version))
                            .collect::<Vec<_>>(),
                    )
                    .bind(events.iter().map(|e| Json(&e.data)).collect::<Vec<_>>())
                    .bind(metadata.iter().map(Json).collect::<Vec<_>>())
                    .bind(&digests)
                    .fetch_one(&self.pool)
                    .await
            }
        };
        let refusal = match appended {
            Ok((Some(stream_version), Some(positions))) => {
                let result = AppendResult {
                    stream_version: stream_version as u64,
                    positions,
                    duplicate: false,
                };
                self.notifier.appended(clinic, result.last_position());
                metrics::counter!("clinic_events_appended_total")
                    .increment(result.positions.len() as u64);
                return Ok(result);
            }
            Ok(_) => Refusal::Version,
            Err(sqlx::Error::Database(db)) if db.constraint() == Some("events_event_id_key") => {
                Refusal::EventId
            }
            Err(error) => return Err(EventStoreError::Database(error)),
        };
        self.settle_refused(clinic, stream, expected, &ids, refusal)
            .await
    }

    /// Answers a refused append: a retry of a stored append (every id stored by one append to
    /// this stream) gets the original result; otherwise the conflict or the reused id.
    async fn settle_refused(
        &self,
        clinic: &ClinicId,
        stream: &StreamId,
        expected: ExpectedVersion,
        ids: &[Uuid],
        refusal: Refusal,
    ) -> Result<AppendResult, EventStoreError> {
        let (positions, same_stream, stream_version): StoredRow =
            sqlx::query_as(include_str!("sql/stored_append.sql"))
                // Rare (refusals only), so planned per call: a plan cached while `events` was
                // small would keep scanning it whole as it grows (see migration 5).
                .persistent(false)
                .bind(clinic.as_str())
                .bind(stream.as_str())
                .bind(ids)
                .fetch_one(&self.pool)
                .await
                .map_err(EventStoreError::Database)?;
        let stream_version = stream_version.unwrap_or(0) as u64;
        match (positions, refusal) {
            (Some(positions), _) if same_stream && positions.len() == ids.len() => {
                Ok(AppendResult {
                    stream_version,
                    positions,
                    duplicate: true,
                })
            }
            (Some(_), _) | (None, Refusal::EventId) => {
                Err(EventStoreError::Duplicate { event_id: ids[0] })
            }
            (None, Refusal::Version) => Err(EventStoreError::Conflict {
                stream: stream.clone(),
                expected,
                actual: stream_version,
            }),
        }
    }
}
