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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::{pipeline_board, PipelineBoard, ReadModelError};
use crate::clinic::ClinicId;
use crate::event_store::{CheckpointWatch, CommitChanges, CommitVersion};
use crate::projections::ProjectionName;

/// The longest a copy is used, heard of a commit or not.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// Clinics kept before every copy is dropped (a bound on memory, far above a deployment's
/// clinics).
const MAX_CLINICS: usize = 256;

/// Each clinic's pipeline board as last read, for as long as it is current.
#[derive(Debug, Clone)]
pub struct BoardCache {
    pool: PgPool,
    watch: CheckpointWatch,
    /// [`MAX_AGE`] in milliseconds, unless a test set another.
    max_age_ms: Arc<AtomicU64>,
    kept: Arc<Mutex<HashMap<ClinicId, Kept>>>,
    /// One reader per clinic reads the table at a time; the others then take its copy (a commit
    /// wakes every open dashboard at once).
    filling: Arc<Mutex<HashMap<ClinicId, Arc<tokio::sync::Mutex<()>>>>>,
}

#[derive(Debug)]
struct Kept {
    board: PipelineBoard,
    version: CommitVersion,
    /// When the read began: the copy's age counts from there.
    read_at: Instant,
}

impl BoardCache {
    /// A cache of `pool`'s boards (inside the runtime: it starts listening for commits).
    pub fn new(pool: &PgPool) -> Self {
        Self {
            pool: pool.clone(),
            watch: CheckpointWatch::new(pool, ProjectionName::Members.as_str()),
            max_age_ms: Arc::new(AtomicU64::new(MAX_AGE.as_millis() as u64)),
            kept: Arc::default(),
            filling: Arc::default(),
        }
    }

    /// Bounds a copy's age by `max_age` instead of [`MAX_AGE`], in every clone. Tests lengthen
    /// it, so that only a commit (or a lost connection) can make the cache read again.
    pub fn set_max_age(&self, max_age: Duration) {
        let ms = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
        self.max_age_ms.store(ms, Ordering::Relaxed);
    }

    /// `clinic`'s pipeline board: the copy while it is current, else read (and kept).
    pub async fn board(&self, clinic: &ClinicId) -> Result<PipelineBoard, ReadModelError> {
        let Some(version) = self.watch.version() else {
            // Nothing would say when a copy goes stale: every reader reads.
            return pipeline_board(&self.pool, clinic).await;
        };
        if let Some(board) = self.current(clinic, version) {
            return Ok(board);
        }
        let filling = self.filling_of(clinic);
        let _filling = filling.lock().await;
        // The reader this one waited for may have left a current copy.
        let Some(version) = self.watch.version() else {
            return pipeline_board(&self.pool, clinic).await;
        };
        if let Some(board) = self.current(clinic, version) {
            return Ok(board);
        }
        let read_at = Instant::now();
        let board = pipeline_board(&self.pool, clinic).await?;
        if self.watch.version() == Some(version) {
            self.keep(clinic, &board, version, read_at);
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

    fn max_age(&self) -> Duration {
        Duration::from_millis(self.max_age_ms.load(Ordering::Relaxed))
    }

    fn current(&self, clinic: &ClinicId, version: CommitVersion) -> Option<PipelineBoard> {
        let max_age = self.max_age();
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.get(clinic)
            .filter(|k| k.version == version && k.read_at.elapsed() < max_age)
            .map(|k| k.board.clone())
    }

    fn filling_of(&self, clinic: &ClinicId) -> Arc<tokio::sync::Mutex<()>> {
        let mut filling = self.filling.lock().unwrap_or_else(|e| e.into_inner());
        if filling.len() >= MAX_CLINICS && !filling.contains_key(clinic) {
            // A reader holding a dropped lock keeps its own Arc and finishes as before.
            filling.clear();
        }
        Arc::clone(filling.entry(clinic.clone()).or_default())
    }

    fn keep(
        &self,
        clinic: &ClinicId,
        board: &PipelineBoard,
        version: CommitVersion,
        read_at: Instant,
    ) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= MAX_CLINICS && !kept.contains_key(clinic) {
            kept.clear();
        }
        kept.insert(
            clinic.clone(),
            Kept {
                board: board.clone(),
                version,
                read_at,
            },
        );
    }
}
