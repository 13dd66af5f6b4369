//! Member-list pages, kept in memory between their projections' commits.
//!
//! The member list is the dashboard page every member of staff opens, and under load its query
//! is most of the API's work. A server answers a page from a copy ([`Copies`], which says when
//! a copy is read again) while neither projection it reads can have committed: the members
//! projection (summaries, pipeline counters) and the groups projection (attendance).
//!
//! A page names members, so a copy is held only while it may be served: it is not kept across a
//! commit heard of (an erasure's included) or past its age bound, and leaves memory within a
//! sweep of that. (A reader queued behind a read in progress is answered by it only if that
//! read began after the reader's call, whatever commits meanwhile.) Every request that is
//! answered from a copy is still logged as a read of the members it shows, as one read from
//! the tables is. Its at-risk flags were measured when the copy was read, at most
//! [`super::copies::MAX_AGE`] before the request.

use std::time::Duration;

use sqlx::PgPool;

use super::copies::Copies;
use super::ReadModelError;
use super::{members_page, Engagement, MemberFilter, MemberSummary, Page, PageRequest};
use crate::clinic::ClinicId;
use crate::projections::ProjectionName;

/// Pages kept before every copy is dropped: a bound on memory well above what a clinic's open
/// dashboards ask for (a page of 50 members is some 10 kB; 256 pages of the largest size, 500
/// members, a few tens of MB). A client that walks more pages than this only costs reads.
const MAX_PAGES: usize = 256;

/// The projections whose tables a page reads.
const READS: &[ProjectionName] = &[ProjectionName::Members, ProjectionName::Groups];

/// What makes one page differ from another, besides the tables.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PageKey {
    clinic: ClinicId,
    filter: MemberFilter,
    page: PageRequest,
    threshold: u32,
}

/// Member-list pages as last read, each for as long as it is current.
#[derive(Debug, Clone)]
pub struct MemberPages {
    pool: PgPool,
    copies: Copies<PageKey, Page<MemberSummary>>,
}

impl MemberPages {
    /// A cache of `pool`'s member pages (inside the runtime: it starts listening for commits).
    pub fn new(pool: &PgPool) -> Self {
        Self {
            pool: pool.clone(),
            copies: Copies::new(pool, READS, MAX_PAGES),
        }
    }

    /// Bounds a copy's age by `max_age` instead of [`super::copies::MAX_AGE`] (tests lengthen
    /// it, so that only a commit can make the cache read again).
    pub fn set_max_age(&self, max_age: Duration) {
        self.copies.set_max_age(max_age);
    }

    /// [`members_page`], from the copy while it is current. A copy read at `engagement.now`
    /// answers requests for up to its age bound after.
    pub async fn page(
        &self,
        clinic: &ClinicId,
        filter: MemberFilter,
        page: &PageRequest,
        engagement: Engagement,
    ) -> Result<Page<MemberSummary>, ReadModelError> {
        let key = PageKey {
            clinic: clinic.clone(),
            filter,
            page: page.clone(),
            threshold: engagement.threshold,
        };
        self.copies
            .get(&key, || {
                members_page(&self.pool, clinic, filter, page, engagement)
            })
            .await
    }

    /// Whether copies are kept now: only while this process hears the projections' commits.
    pub fn is_listening(&self) -> bool {
        self.copies.is_listening()
    }

    /// How many pages (copies and last reads) this process holds now: a page names members, so
    /// tests check it falls to nothing once no copy can be served.
    pub fn held(&self) -> usize {
        self.copies.held()
    }

    /// How many pages are kept now (each may be served).
    pub fn kept(&self) -> usize {
        self.copies.kept()
    }

    /// Drops the copies read from any of `projections`, which the caller saw apply a write
    /// (their NOTIFY may not have arrived yet).
    pub fn committed(&self, projections: &[ProjectionName]) {
        self.copies.committed(projections);
    }
}
