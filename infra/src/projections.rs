//! Projections: the log folded into the read-model tables the dashboards query.
//!
//! A projection has a name ([`ProjectionName`]), owns a set of tables (created by
//! `create_<name>_read_model` in `migrations/*_read_models.sql`) and a pure fold from events to
//! row changes ([`members::MemberRows`], [`groups::GroupRows`]), tested given/when/then without
//! a database. Around the fold, the runner:
//!
//! - reads the log in commit-safe pages ([`EventStore::read_log`] with [`Scope::All`]) from
//!   the projection's checkpoint, and applies each page in ONE transaction that also moves the
//!   checkpoint, so a crash never applies an event twice or skips one ([`catch_up`]);
//! - per page, loads the rows the page's events touch (a few `= ANY` queries), folds the
//!   events over them in memory, and writes the changed rows back set-based (`unnest`):
//!   a handful of statements per page whatever its size, which is what makes a rebuild fast;
//! - runs in exactly one process at a time: [`run`] holds a PostgreSQL advisory lock on a
//!   dedicated connection; other processes wait on standby and take over when its connection
//!   dies. Each page's transaction also locks the checkpoint row and re-reads it, so even two
//!   runners that both believed they led could never apply a page twice;
//! - goes live after catching up: wakes on the store's NOTIFY, polls as a fallback.
//!
//! [`rebuild`] refolds from position 0 into shadow tables and swaps them in atomically;
//! [`wait_until_caught_up`] gives the API read-your-writes.

mod checkpoint;
pub mod groups;
pub mod members;
mod rebuild;
mod rows;
mod runner;

use std::fmt;

use clinic_domain::DecodeError;

use crate::event_store::{EventStoreError, RecordedEvent};
use crate::keyring::{KeySet, Keyring, KeyringError};

pub use rebuild::{drop_abandoned_rebuilds, rebuild, RebuildOptions, RebuildReport};
pub use rows::{Envelope, Table};
pub use runner::{
    catch_up, catch_up_pages, run, spawn_runners, wait_until_caught_up, Freshness,
    ProjectionOptions,
};

#[cfg(doc)]
use crate::event_store::{EventStore, Scope};

/// The projections this build knows, each with its own checkpoint, lock and tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProjectionName {
    /// Member summaries, check-ins, follow-ups and the pipeline board (member streams).
    Members,
    /// Group summaries, rosters, sessions and attendance (group streams).
    Groups,
    /// The mail outbox (member streams): one row per email to send. Not in [`Self::ALL`]:
    /// `crate::outbox::spawn` runs it beside its delivery worker, and it is never rebuilt
    /// (a rebuild would forget which emails went out; `prepare_read_model_rebuild` refuses it).
    Outbox,
}

impl ProjectionName {
    /// Every projection, in the order they are started and rebuilt.
    pub const ALL: &'static [Self] = &[Self::Members, Self::Groups];

    /// The stable name: the checkpoint's key, the `--projection` argument.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Members => "members",
            Self::Groups => "groups",
            Self::Outbox => "outbox",
        }
    }

    /// Parses a name given on the command line.
    pub fn parse(raw: &str) -> Result<Self, UnknownProjection> {
        Self::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == raw)
            .ok_or(UnknownProjection)
    }

    /// The tables the projection writes (the API reads them; a rebuild replaces them).
    pub const fn tables(self) -> &'static [&'static str] {
        match self {
            Self::Members => &[
                "member_summaries",
                "member_check_ins",
                "member_follow_ups",
                "pipeline_counts",
            ],
            Self::Groups => &[
                "group_summaries",
                "group_rosters",
                "group_sessions",
                "session_attendance",
            ],
            Self::Outbox => &["outbox"],
        }
    }
}

impl fmt::Display for ProjectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A projection name that is not one of [`ProjectionName::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown projection: expected one of members, groups")]
pub struct UnknownProjection;

/// Why a page could not be applied. The runner logs it, rolls the page back and retries.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The read models' database failed.
    #[error("the read models' database failed")]
    Database(#[from] sqlx::Error),
    /// The log could not be read.
    #[error("the event log could not be read")]
    Store(#[from] EventStoreError),
    /// The member keys that open the page's personal fields could not be had.
    #[error("member keys could not be read")]
    Keys(#[from] KeyringError),
    /// A stored event could not be decoded (unknown type or schema version).
    #[error("the event at position {position} could not be decoded")]
    Decode {
        /// Where it is in the log.
        position: i64,
        /// Why.
        #[source]
        source: DecodeError,
    },
    /// An event's stream id does not name an entity of its category.
    #[error("the event at position {position} has a malformed stream id")]
    MalformedStream {
        /// Where it is in the log.
        position: i64,
    },
    /// An event refers to a row its stream's first event should have created.
    #[error("the event at position {position} refers to a {entity} the projection does not hold")]
    MissingRow {
        /// Where it is in the log.
        position: i64,
        /// What was missing (`member`, `group`).
        entity: &'static str,
    },
    /// A stored read-model value is not one this build knows (a column out of step).
    #[error("{table}.{column} holds a value this build does not know")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
    },
    /// A newer release migrated the database: this build's folds may be out of date, so it
    /// applies nothing more (the runner stops for good).
    #[error(transparent)]
    Superseded(#[from] crate::db::Superseded),
    /// Another rebuild of the same projection is running.
    #[error("a rebuild of {0} is already running")]
    RebuildRunning(ProjectionName),
}

/// The events of one stream category in a page, decoded.
pub(crate) fn decode_category<E, Id>(
    keys: &KeySet,
    events: &[RecordedEvent],
    parse_id: impl Fn(&str) -> Option<Id>,
) -> Result<Vec<Envelope<E, Id>>, ProjectionError>
where
    E: clinic_domain::StoredEvent,
{
    let prefix = E::CATEGORY;
    let mut decoded = Vec::new();
    for recorded in events {
        let category = recorded
            .stream_id
            .split_once('-')
            .map_or("", |(category, _)| category);
        if category != prefix {
            continue;
        }
        let id = parse_id(&recorded.stream_id).ok_or(ProjectionError::MalformedStream {
            position: recorded.position,
        })?;
        let event = crate::codec::decode::<E>(keys, recorded).map_err(|source| {
            ProjectionError::Decode {
                position: recorded.position,
                source,
            }
        })?;
        decoded.push(Envelope {
            clinic: recorded.clinic.clone(),
            id,
            version: recorded.version,
            position: recorded.position,
            recorded_at: recorded.recorded_at,
            event,
        });
    }
    Ok(decoded)
}

/// Applies one page of the log to `projection`'s tables, on a connection inside the caller's
/// transaction (which also moves the checkpoint).
pub(crate) async fn apply_page(
    conn: &mut sqlx::PgConnection,
    keyring: &Keyring,
    projection: ProjectionName,
    events: &[RecordedEvent],
) -> Result<(), ProjectionError> {
    match projection {
        ProjectionName::Members => members::apply(conn, keyring, events).await,
        ProjectionName::Groups => groups::apply(conn, keyring, events).await,
        ProjectionName::Outbox => crate::outbox::projection::apply(conn, keyring, events).await,
    }
}

/// Streams from their first event up to a version each (clinic, stream id, last version), in
/// stream and version order, on the page's connection: for a fold that replays a stream to
/// know its entity at one of the page's events.
pub(crate) async fn load_streams<'a>(
    conn: &mut sqlx::PgConnection,
    streams: impl IntoIterator<Item = (&'a str, &'a str, i64)>,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    let (mut clinics, mut ids, mut upto) = (Vec::new(), Vec::new(), Vec::new());
    for (clinic, stream, version) in streams {
        clinics.push(clinic);
        ids.push(stream);
        upto.push(version);
    }
    sqlx::query_as(include_str!("projections/sql/load_streams.sql"))
        .bind(&clinics)
        .bind(&ids)
        .bind(&upto)
        .fetch_all(conn)
        .await
}

/// The streams in rows [`load_streams`] returned, one slice each, in version order.
pub(crate) fn each_stream(rows: &[RecordedEvent]) -> impl Iterator<Item = &[RecordedEvent]> {
    rows.chunk_by(|a, b| a.clinic == b.clinic && a.stream_id == b.stream_id)
}

/// Parses a stored enum value, naming the column when it is not one this build knows.
pub(crate) fn parse_stored<T>(
    raw: &str,
    table: &'static str,
    column: &'static str,
) -> Result<T, ProjectionError>
where
    T: std::str::FromStr,
{
    raw.parse()
        .map_err(|_| ProjectionError::Corrupt { table, column })
}
