//! Integrity: recompute every hash chain and name the streams that no longer match.

use futures::TryStreamExt;
use std::collections::BTreeMap;

use super::hash::{self, Content};
use super::{EventStore, EventStoreError, RecordedEvent, Scope};

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

/// One stream's chain, followed event by event.
struct Chain {
    key: (String, String),
    expected_version: i64,
    last_hash: Vec<u8>,
    intact: bool,
}

impl EventStore {
    /// Recomputes the hash chain of every stream in `scope`, streaming the log in stream order
    /// (memory stays flat whatever its size). A stream is broken when an event's content no
    /// longer gives its hash, a version is missing, a `prev_hash` is not the previous event's
    /// hash, or its `streams` row disagrees with its last event.
    ///
    /// The heads and the events are read in one snapshot (a read-only REPEATABLE READ
    /// transaction), so the check may run while the service writes: a stream appended to or
    /// created meanwhile is seen before or after that append, never half of it.
    pub async fn verify(&self, scope: &Scope) -> Result<IntegrityReport, EventStoreError> {
        let mut snapshot = self.pool.begin().await.map_err(EventStoreError::Database)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *snapshot)
            .await
            .map_err(EventStoreError::Database)?;
        let heads: BTreeMap<(String, String), (i64, Vec<u8>)> = sqlx::query_as::<_, (String, String, i64, Vec<u8>)>(
            "SELECT clinic, stream_id, version, last_hash FROM streams WHERE $1::text IS NULL OR clinic = $1",
        )
        .bind(scope.clinic())
        .fetch_all(&mut *snapshot)
        .await
        .map_err(EventStoreError::Database)?
        .into_iter()
        .map(|(clinic, stream, version, hash)| ((clinic, stream), (version, hash)))
        .collect();

        let mut rows = sqlx::query_as::<_, RecordedEvent>(include_str!("sql/verify.sql"))
            .bind(scope.clinic())
            .fetch(&mut *snapshot);
        let mut broken = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut events_checked = 0i64;
        let mut current: Option<Chain> = None;
        let finish = |chain: Chain, broken: &mut Vec<String>| {
            let head_agrees = heads.get(&chain.key).is_some_and(|(version, hash)| {
                *version == chain.expected_version - 1 && *hash == chain.last_hash
            });
            if !(chain.intact && head_agrees) {
                broken.push(format!("{}/{}", chain.key.0, chain.key.1));
            }
        };
        while let Some(event) = rows.try_next().await.map_err(EventStoreError::Database)? {
            events_checked += 1;
            let key = (event.clinic.clone(), event.stream_id.clone());
            if current.as_ref().is_none_or(|chain| chain.key != key) {
                if let Some(done) = current.take() {
                    finish(done, &mut broken);
                }
                seen.insert(key.clone());
                current = Some(Chain {
                    key,
                    expected_version: 1,
                    last_hash: Vec::new(),
                    intact: true,
                });
            }
            let chain = current.as_mut().expect("set above");
            let digest = hash::digest(&Content {
                clinic: &event.clinic,
                stream_id: &event.stream_id,
                event_id: event.event_id,
                event_type: &event.event_type,
                schema_version: event.schema_version,
                data: &event.data,
                metadata: &event.metadata,
            });
            let expected = hash::chain(&chain.last_hash, event.version, event.recorded_at, &digest);
            chain.intact &= event.version == chain.expected_version
                && event.prev_hash == chain.last_hash
                && event.hash == expected;
            chain.expected_version = event.version + 1;
            chain.last_hash = event.hash;
        }
        if let Some(done) = current.take() {
            finish(done, &mut broken);
        }
        // A streams row whose events are all gone.
        for key in heads.keys().filter(|key| !seen.contains(*key)) {
            broken.push(format!("{}/{}", key.0, key.1));
        }
        let streams_checked = heads
            .keys()
            .chain(seen.iter())
            .collect::<std::collections::BTreeSet<_>>()
            .len() as i64;
        broken.sort();
        Ok(IntegrityReport {
            streams_checked,
            events_checked,
            broken_streams: broken,
        })
    }
}
