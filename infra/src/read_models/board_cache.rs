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

/// How long a reader waits for another's read of the same board before reading itself.
pub const READ_WAIT: Duration = Duration::from_secs(1);

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
    /// Each clinic's last read (when it began, what it found), behind the lock its next reader
    /// takes: one read at a time per clinic, shared by the readers queued behind it (a commit
    /// wakes every open dashboard at once).
    last_reads: Arc<Mutex<HashMap<ClinicId, LastRead>>>,
}

type LastRead = Arc<tokio::sync::Mutex<Option<(Instant, PipelineBoard)>>>;

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
            last_reads: Arc::default(),
        }
    }

    /// Bounds a copy's age by `max_age` (at least 1 ms) instead of [`MAX_AGE`], in every clone.
    /// Tests lengthen it, so that only a commit (or a lost connection) can make the cache read
    /// again.
    pub fn set_max_age(&self, max_age: Duration) {
        let ms = u64::try_from(max_age.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.max_age_ms.store(ms, Ordering::Relaxed);
    }

    /// `clinic`'s pipeline board: the copy while it is current, else read (and kept).
    ///
    /// Readers that miss together queue for one read: a read that began after a reader's call
    /// has seen every commit before it, so its board answers that reader too, kept or not.
    /// A reader waits [`READ_WAIT`] at most, then reads beside a read that is slow (a held
    /// lock, a struggling database) instead of queueing behind it.
    pub async fn board(&self, clinic: &ClinicId) -> Result<PipelineBoard, ReadModelError> {
        let called_at = Instant::now();
        let Some(version) = self.watch.version() else {
            // Nothing would say when a copy goes stale: every reader reads.
            return pipeline_board(&self.pool, clinic).await;
        };
        if let Some(board) = self.current(clinic, version) {
            return Ok(board);
        }
        let last_read = self.last_read_of(clinic);
        let Ok(mut last_read) = tokio::time::timeout(READ_WAIT, last_read.lock()).await else {
            return pipeline_board(&self.pool, clinic).await;
        };
        if let Some((_, board)) = last_read
            .as_ref()
            .filter(|(started, _)| *started >= called_at)
        {
            return Ok(board.clone());
        }
        let version = self.watch.version();
        if let Some(board) = version.and_then(|v| self.current(clinic, v)) {
            return Ok(board);
        }
        let read_at = Instant::now();
        let board = pipeline_board(&self.pool, clinic).await?;
        *last_read = Some((read_at, board.clone()));
        if let Some(version) = version.filter(|&v| self.watch.version() == Some(v)) {
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

    fn last_read_of(&self, clinic: &ClinicId) -> LastRead {
        let mut last_reads = self.last_reads.lock().unwrap_or_else(|e| e.into_inner());
        if last_reads.len() >= MAX_CLINICS && !last_reads.contains_key(clinic) {
            // A reader holding a dropped entry keeps its own Arc and finishes as before.
            last_reads.clear();
        }
        Arc::clone(last_reads.entry(clinic.clone()).or_default())
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
