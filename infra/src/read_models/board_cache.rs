//! The pipeline board, kept in memory between the members projection's commits.
//!
//! Every open dashboard reads the board, a handful of counter rows that change only when the
//! members projection commits: a server answers it from a copy ([`Copies`], which says when a
//! copy is read again).

use std::time::Duration;

use sqlx::PgPool;

use super::copies::Copies;
use super::{pipeline_board, PipelineBoard, ReadModelError};
use crate::clinic::ClinicId;
use crate::event_store::CommitChanges;
use crate::projections::ProjectionName;

/// Clinics kept before every copy is dropped (a bound on memory, far above a deployment's
/// clinics).
const MAX_CLINICS: usize = 256;

/// The projection whose tables the board reads.
const READS: &[ProjectionName] = &[ProjectionName::Members];

/// Each clinic's pipeline board as last read, for as long as it is current.
#[derive(Debug, Clone)]
pub struct BoardCache {
    pool: PgPool,
    copies: Copies<ClinicId, PipelineBoard>,
}

impl BoardCache {
    /// A cache of `pool`'s boards (inside the runtime: it starts listening for commits).
    pub fn new(pool: &PgPool) -> Self {
        Self {
            pool: pool.clone(),
            copies: Copies::new(pool, READS, MAX_CLINICS),
        }
    }

    /// Bounds a copy's age by `max_age` instead of [`super::copies::MAX_AGE`] (tests lengthen
    /// it, so that only a commit can make the cache read again).
    pub fn set_max_age(&self, max_age: Duration) {
        self.copies.set_max_age(max_age);
    }

    /// `clinic`'s pipeline board: the copy while it is current, else read (and kept).
    pub async fn board(&self, clinic: &ClinicId) -> Result<PipelineBoard, ReadModelError> {
        self.copies
            .get(clinic, || pipeline_board(&self.pool, clinic))
            .await
    }

    /// Wake-ups when a board may have changed, for subscribers that push it.
    pub fn changes(&self) -> CommitChanges {
        self.copies.changes()
    }

    /// Whether copies are kept now: only while this process hears the projection's commits.
    pub fn is_listening(&self) -> bool {
        self.copies.is_listening()
    }

    /// Drops the copies read from any of `projections`, which the caller saw apply a write
    /// (their NOTIFY may not have arrived yet).
    pub fn committed(&self, projections: &[ProjectionName]) {
        self.copies.committed(projections);
    }
}
