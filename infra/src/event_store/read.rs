//! Reading: one stream (from a version, or as of a moment) and the whole log in commit-safe
//! order for subscribers.

use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Row};
use time::OffsetDateTime;

use super::{EventStore, EventStoreError, RecordedEvent, Scope, StreamId};
use crate::clinic::ClinicId;

/// A subscriber's place in the log: the last event it has seen, in commit-safe order.
///
/// Positions are taken in insertion order but transactions commit in another order, so "every
/// event after position P" is not a stable question while appends are in flight. The log is
/// read in (`transaction_id`, `position`) order, and only events whose transaction is older
/// than every transaction still running: no event can later appear before such a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct LogCursor {
    /// The transaction id of the last event seen (0 before the first).
    pub transaction_id: i64,
    /// The position of the last event seen (0 before the first).
    pub position: i64,
}

impl LogCursor {
    /// Before the first event.
    pub const START: Self = Self {
        transaction_id: 0,
        position: 0,
    };

    /// The cursor just after `event`.
    pub fn after(event: &RecordedEvent) -> Self {
        Self {
            transaction_id: event.transaction_id,
            position: event.position,
        }
    }
}

/// A page of the log and where the next page starts.
#[derive(Debug, Clone, PartialEq)]
pub struct LogPage {
    /// Events in commit-safe order.
    pub events: Vec<RecordedEvent>,
    /// Pass this to read the next page (unchanged when the page is empty).
    pub next: LogCursor,
}

impl FromRow<'_, PgRow> for RecordedEvent {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            position: row.try_get("position")?,
            transaction_id: row.try_get("transaction_id")?,
            clinic: row.try_get("clinic")?,
            stream_id: row.try_get("stream_id")?,
            version: row.try_get("version")?,
            event_id: row.try_get("event_id")?,
            event_type: row.try_get("type")?,
            schema_version: row.try_get("schema_version")?,
            data: row.try_get("data")?,
            metadata: row.try_get("metadata")?,
            recorded_at: row.try_get("recorded_at")?,
            prev_hash: row.try_get("prev_hash")?,
            hash: row.try_get("hash")?,
        })
    }
}

impl EventStore {
    /// The stream's events from `from_version` (1 = all), in version order.
    pub async fn read_stream(
        &self,
        clinic: &ClinicId,
        stream: &StreamId,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        sqlx::query_as(include_str!("sql/read_stream.sql"))
            .bind(clinic.as_str())
            .bind(stream.as_str())
            .bind(from_version as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(EventStoreError::Database)
    }

    /// The stream as it stood at `at`: its events recorded up to and including that moment.
    pub async fn read_stream_as_of(
        &self,
        clinic: &ClinicId,
        stream: &StreamId,
        at: OffsetDateTime,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        self.read_streams_as_of(clinic, std::slice::from_ref(stream), at)
            .await
    }

    /// Several streams as they stood at `at`, in one round trip (time travel needs a member's
    /// stream and its groups' together): in stream id order, each in version order.
    pub async fn read_streams_as_of(
        &self,
        clinic: &ClinicId,
        streams: &[StreamId],
        at: OffsetDateTime,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        let ids: Vec<&str> = streams.iter().map(StreamId::as_str).collect();
        sqlx::query_as(include_str!("sql/read_streams_as_of.sql"))
            .bind(clinic.as_str())
            .bind(&ids)
            .bind(at)
            .fetch_all(&self.pool)
            .await
            .map_err(EventStoreError::Database)
    }

    /// The streams of `clinic` that hold an event of `event_type` whose data field `field` is
    /// `value`, recorded by `at`: which groups a member had joined by then, for time travel
    /// (the read models keep only today's rosters). Fast only where an index serves the type
    /// and field (MemberJoined's `member_id`, migration 14); otherwise a scan of the log.
    pub async fn streams_naming(
        &self,
        clinic: &ClinicId,
        event_type: &str,
        field: &str,
        value: &str,
        at: OffsetDateTime,
    ) -> Result<Vec<StreamId>, EventStoreError> {
        let ids: Vec<String> = sqlx::query_scalar(include_str!("sql/streams_naming.sql"))
            // Planned per call, with the values: only then can a partial index on the type serve.
            .persistent(false)
            .bind(clinic.as_str())
            .bind(event_type)
            .bind(field)
            .bind(value)
            .bind(at)
            .fetch_all(&self.pool)
            .await
            .map_err(EventStoreError::Database)?;
        ids.iter()
            .map(|id| StreamId::parse(id))
            .collect::<Result<_, _>>()
            .map_err(|error| EventStoreError::Database(sqlx::Error::Decode(Box::new(error))))
    }

    /// The stream's current version (0 when it does not exist).
    pub async fn stream_version(
        &self,
        clinic: &ClinicId,
        stream: &StreamId,
    ) -> Result<u64, EventStoreError> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM streams WHERE clinic = $1 AND stream_id = $2")
                .bind(clinic.as_str())
                .bind(stream.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(EventStoreError::Database)?;
        Ok(version.unwrap_or(0) as u64)
    }

    /// The clinics holding a stream of this id (operators' tools, which are not scoped to one
    /// clinic, find a member's clinic with it; ids are random, so there is at most one).
    pub async fn clinics_of(&self, stream: &StreamId) -> Result<Vec<ClinicId>, EventStoreError> {
        let clinics: Vec<String> =
            sqlx::query_scalar("SELECT clinic FROM streams WHERE stream_id = $1 ORDER BY clinic")
                .bind(stream.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(EventStoreError::Database)?;
        Ok(clinics
            .iter()
            .filter_map(|clinic| ClinicId::parse(clinic).ok())
            .collect())
    }

    /// Up to `limit` events after `after`, in commit-safe order (see [`LogCursor`]).
    pub async fn read_log(
        &self,
        scope: &Scope,
        after: LogCursor,
        limit: u32,
    ) -> Result<LogPage, EventStoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(EventStoreError::Database)?;
        Self::read_log_on(&mut conn, scope, after, limit).await
    }

    /// [`Self::read_log`] on a connection the caller holds, e.g. inside its own transaction
    /// (a projection's rebuild swap reads the last pages under the locks it holds, without
    /// waiting for a second connection).
    pub async fn read_log_on(
        conn: &mut PgConnection,
        scope: &Scope,
        after: LogCursor,
        limit: u32,
    ) -> Result<LogPage, EventStoreError> {
        let query = match scope {
            Scope::Clinic(clinic) => {
                sqlx::query_as(include_str!("sql/read_log_clinic.sql")).bind(clinic.as_str())
            }
            Scope::All => sqlx::query_as(include_str!("sql/read_log_all.sql")),
        };
        let events: Vec<RecordedEvent> = query
            .bind(after.transaction_id)
            .bind(after.position)
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await
            .map_err(EventStoreError::Database)?;
        let next = events.last().map_or(after, LogCursor::after);
        Ok(LogPage { events, next })
    }

    /// The cursor after the last event a subscriber could read now: where a subscription that
    /// wants only new events starts.
    pub async fn log_head(&self, scope: &Scope) -> Result<LogCursor, EventStoreError> {
        let head: Option<(i64, i64)> = sqlx::query_as(include_str!("sql/log_head.sql"))
            .bind(scope.clinic())
            .fetch_optional(&self.pool)
            .await
            .map_err(EventStoreError::Database)?;
        Ok(
            head.map_or(LogCursor::START, |(transaction_id, position)| LogCursor {
                transaction_id,
                position,
            }),
        )
    }

    /// Up to `limit` committed events of the scope with a position above `after_position`, in
    /// position order: the auditors' view of the log. A transaction still in flight may later
    /// add events below the last position returned; subscribers use [`Self::read_log`].
    pub async fn read_log_by_position(
        &self,
        scope: &Scope,
        after_position: i64,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        sqlx::query_as(include_str!("sql/read_log_by_position.sql"))
            .bind(after_position)
            .bind(i64::from(limit))
            .bind(scope.clinic())
            .fetch_all(&self.pool)
            .await
            .map_err(EventStoreError::Database)
    }
}
