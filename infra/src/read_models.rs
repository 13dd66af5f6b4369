//! The query side the API calls: plain async functions over the projections' tables.
//!
//! Every function takes the caller's [`ClinicId`] and filters on it (tenancy: a clinic never
//! sees another's rows, whatever ids it passes). Batch functions (`*_by_ids`, `*_of_members`,
//! `*_of_groups`, `rosters`) answer many ids in one SQL round trip, for DataLoaders. Lists that
//! grow are pages with keyset cursors ([`Page`]); values are the domain's own enums.
//!
//! Engagement is computed at query time for the `now` passed in ([`Engagement`]): attended
//! sessions are stored as instants, so "sessions attended in the trailing 7 days" and the
//! at-risk flag stay right as days pass with no new event.
//!
//! The read models lag the log by a page or so; a mutation that must read its own write calls
//! [`crate::projections::wait_until_caught_up`] first.

mod aftercare;
mod groups;
mod members;

use std::str::FromStr;

use clinic_domain::engagement::{DEFAULT_AT_RISK_THRESHOLD, ENGAGEMENT_WINDOW};
use time::OffsetDateTime;

pub use aftercare::{follow_ups_due, outcomes, OutcomeCount, OutcomeReport, OutcomeRow};
pub use groups::{
    groups_by_ids, groups_of_members, groups_page, is_on_roster_of_facilitator, rosters,
    sessions_of_groups, stopped_attending, AttendanceEntry, GroupSummary, RosterEntry, Session,
    StoppedAttending,
};
pub use members::{
    at_risk_members, check_ins_of_members, follow_ups_of_members, member_of_follow_up,
    members_by_ids, members_page, outreach_items, pipeline_board, sessions_attended_between,
    CheckIn, FollowUp, LevelCount, MemberFilter, MemberSummary, OutreachItem, PipelineBoard,
    StageCount,
};

#[cfg(doc)]
use crate::clinic::ClinicId;

/// The most rows one page returns, whatever `first` asks for.
pub const MAX_PAGE_SIZE: u32 = 500;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadModelError {
    /// The database failed.
    #[error("the read models' database failed")]
    Database(#[from] sqlx::Error),
    /// An `after` cursor that this list did not hand out.
    #[error("the cursor is not one this list returned")]
    InvalidCursor,
    /// A stored value this build does not know (the tables are out of step with the code).
    #[error("{table}.{column} holds a value this build does not know")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
    },
}

/// Which page of a list: at most `first` rows after the cursor `after` (from the start
/// without one).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageRequest {
    /// How many rows (clamped to 1..=[`MAX_PAGE_SIZE`]).
    pub first: u32,
    /// The `end_cursor` (or an edge's cursor) of the previous page.
    pub after: Option<String>,
}

impl PageRequest {
    /// The first `first` rows.
    pub fn first(first: u32) -> Self {
        Self { first, after: None }
    }

    fn limit(&self) -> i64 {
        i64::from(self.first.clamp(1, MAX_PAGE_SIZE))
    }
}

/// One row of a page and the cursor just after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge<T> {
    /// Pass as `after` to continue after this row.
    pub cursor: String,
    /// The row.
    pub node: T,
}

/// A page of a list in a stable order, Relay-style.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The rows.
    pub edges: Vec<Edge<T>>,
    /// Whether rows follow this page.
    pub has_next_page: bool,
    /// The last row's cursor.
    pub end_cursor: Option<String>,
    /// How many rows the whole list holds (with the same filters).
    pub total_count: i64,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows (the extra one says a next page exists).
    fn from_rows(mut rows: Vec<(i64, T)>, limit: i64, prefix: char, total_count: i64) -> Self {
        let has_next_page = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let edges: Vec<Edge<T>> = rows
            .into_iter()
            .map(|(position, node)| Edge {
                cursor: cursor(prefix, position),
                node,
            })
            .collect();
        Self {
            end_cursor: edges.last().map(|e| e.cursor.clone()),
            has_next_page,
            edges,
            total_count,
        }
    }
}

/// Cursors are a list's letter and the row's log position (its stable sort key): opaque to
/// clients, refused by other lists.
fn cursor(prefix: char, position: i64) -> String {
    format!("{prefix}{position}")
}

fn parse_cursor(prefix: char, after: Option<&str>) -> Result<i64, ReadModelError> {
    match after {
        None => Ok(0),
        Some(raw) => raw
            .strip_prefix(prefix)
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or(ReadModelError::InvalidCursor),
    }
}

/// The instant engagement is measured at, and the clinic's at-risk threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Engagement {
    /// The end of the 7-day window (inclusive): usually the request's time.
    pub now: OffsetDateTime,
    /// Members in treatment attending fewer sessions than this in the window are at risk.
    pub threshold: u32,
}

impl Engagement {
    /// At `now`, with the default threshold (3 sessions a week).
    pub const fn at(now: OffsetDateTime) -> Self {
        Self {
            now,
            threshold: DEFAULT_AT_RISK_THRESHOLD,
        }
    }

    /// The window's start (exclusive).
    fn since(&self) -> OffsetDateTime {
        self.now - ENGAGEMENT_WINDOW
    }
}

/// Parses a stored enum value, naming the column when it is not one this build knows.
fn stored<T: FromStr>(
    raw: &str,
    table: &'static str,
    column: &'static str,
) -> Result<T, ReadModelError> {
    raw.parse()
        .map_err(|_| ReadModelError::Corrupt { table, column })
}

fn stored_opt<T: FromStr>(
    raw: Option<&str>,
    table: &'static str,
    column: &'static str,
) -> Result<Option<T>, ReadModelError> {
    raw.map(|raw| stored(raw, table, column)).transpose()
}
