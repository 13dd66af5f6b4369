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
pub mod board_cache;
pub mod copies;
mod groups;
mod member_pages;
mod members;
mod page;

use std::str::FromStr;

use clinic_domain::engagement::{DEFAULT_AT_RISK_THRESHOLD, ENGAGEMENT_WINDOW};
use time::OffsetDateTime;

pub use aftercare::{
    follow_ups_due, follow_ups_due_page, outcomes, OutcomeCount, OutcomeReport, OutcomeRow,
};
pub use board_cache::BoardCache;
pub use groups::{
    groups_by_ids, groups_of_members, groups_page, is_on_roster_of_facilitator, rosters,
    sessions_of_groups, stopped_attending, AttendanceEntry, GroupSummary, RosterEntry, Session,
    StoppedAttending,
};
pub use member_pages::MemberPages;
pub use members::{
    at_risk_members, check_ins_of_members, follow_ups_of_members, groups_attended_between,
    member_of_follow_up, members_by_ids, members_page, outreach_items, pipeline_board, CheckIn,
    FollowUp, LevelCount, MemberFilter, MemberSummary, OutreachItem, PipelineBoard, StageCount,
};
pub use page::{Edge, Page, PageRequest, MAX_PAGE_SIZE};

#[cfg(doc)]
use crate::clinic::ClinicId;

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
