//! The pipeline board, kept in memory between the members projection's commits.
//!
//! Every open dashboard reads the board, a handful of counter rows that change only when the
//! members projection commits. A server keeps each clinic's last board and answers from it
//! while the projection cannot have committed since: its checkpoint's trigger NOTIFYs every
//! commit ([`CheckpointWatch`]). The copy is the board the query would give, without the round
//! trip. The table is read again:
//! - once a commit of the projection was heard of, or counted by this process itself (a
//!   mutation saw its write applied: read-your-writes does not wait for the NOTIFY);
//! - whenever the LISTEN connection is down or was lost (a commit may have gone unheard);
//! - when the copy is older than [`MAX_AGE`], a bound for what no NOTIFY announces (counters
//!   changed by hand, a connection silently cut).
//!
//! A board read while a commit arrives is answered but not kept, so a copy is never older than
//! the last commit heard of.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::{pipeline_board, PipelineBoard, ReadModelError};
use crate::clinic::ClinicId;
use crate::event_store::{CheckpointWatch, CommitChanges, CommitVersion};
use crate::projections::ProjectionName;

/// The longest a copy is used, heard of a commit or not.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// Clinics kept before stale copies are dropped (a bound on memory, far above a deployment's
/// clinics).
const MAX_CLINICS: usize = 256;

/// Each clinic's pipeline board as last read, for as long as it is current.
#[derive(Debug, Clone)]
pub struct BoardCache {
    watch: CheckpointWatch,
    max_age: Duration,
    kept: Arc<Mutex<HashMap<ClinicId, Kept>>>,
}

#[derive(Debug)]
struct Kept {
    board: PipelineBoard,
    version: CommitVersion,
    read_at: Instant,
}

impl BoardCache {
    /// A cache of `pool`'s boards (inside the runtime: it starts listening for commits).
    pub fn new(pool: &PgPool) -> Self {
        Self::with_max_age(pool, MAX_AGE)
    }

    /// [`Self::new`] with another bound on a copy's age (tests use a long one, to tell a
    /// commit's NOTIFY apart from the bound).
    pub fn with_max_age(pool: &PgPool, max_age: Duration) -> Self {
        Self {
            watch: CheckpointWatch::new(pool, ProjectionName::Members.as_str()),
            max_age,
            kept: Arc::default(),
        }
    }

    /// `clinic`'s pipeline board: the copy while it is current, else read (and kept).
    pub async fn board(
        &self,
        pool: &PgPool,
        clinic: &ClinicId,
    ) -> Result<PipelineBoard, ReadModelError> {
        let before = self.watch.version();
        if let Some(version) = before {
            if let Some(board) = self.current(clinic, version) {
                return Ok(board);
            }
        }
        let board = pipeline_board(pool, clinic).await?;
        if let Some(version) = before.filter(|&v| self.watch.version() == Some(v)) {
            self.keep(clinic, &board, version);
        }
        Ok(board)
    }

    /// Wake-ups when a board may have changed, for subscribers that push it.
    pub fn changes(&self) -> CommitChanges {
        self.watch.changes()
    }

    /// Whether copies are kept now: only while this process hears the projection's commits.
    pub fn is_listening(&self) -> bool {
        self.watch.version().is_some()
    }

    /// Drops every copy: the members projection has committed (the caller saw it apply a
    /// write), and its NOTIFY may not have arrived yet.
    pub fn projection_committed(&self) {
        self.watch.committed();
    }

    fn current(&self, clinic: &ClinicId, version: CommitVersion) -> Option<PipelineBoard> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.get(clinic)
            .filter(|k| k.version == version && k.read_at.elapsed() < self.max_age)
            .map(|k| k.board.clone())
    }

    fn keep(&self, clinic: &ClinicId, board: &PipelineBoard, version: CommitVersion) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= MAX_CLINICS {
            kept.retain(|_, k| k.version == version && k.read_at.elapsed() < self.max_age);
        }
        kept.insert(
            clinic.clone(),
            Kept {
                board: board.clone(),
                version,
                read_at: Instant::now(),
            },
        );
    }
}
