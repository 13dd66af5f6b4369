//! Read models kept in memory between their projections' commits.
//!
//! Every open dashboard reads the same few read models over and over, and they change only
//! when a projection commits. A server keeps what it last read, by key, and answers from it
//! while none of the projections the read depends on can have committed since: their
//! checkpoints' trigger NOTIFYs every commit ([`CheckpointWatch`]). A copy is what the query
//! would give, without the round trip. The tables are read again:
//! - once a commit of one of the projections was heard of, or counted by this process itself
//!   (a mutation saw its write applied: read-your-writes does not wait for the NOTIFY);
//! - whenever the LISTEN connection is down or was lost (a commit may have gone unheard);
//! - when the copy is older than [`MAX_AGE`], a bound for what no NOTIFY announces (rows
//!   changed by hand, a connection silently cut, and the clock: a read model measured at the
//!   time of its read, such as the at-risk flags, is at most this much behind the request).
//!
//! A copy in demand is read again before it reaches its age bound (past
//! [`REFRESH_AFTER_QUARTERS`] quarters of it): one reader reads while the others are still
//! answered from the copy, so the readers of a busy dashboard do not all queue behind a read
//! each time a copy expires (that queue was the member page's 99th percentile under load).
//! Should that read outlast the bound, the readers after it wait for it as for any read.
//!
//! A value read while a commit arrives is answered but not kept, so a copy is never older than
//! the last commit heard of. Nor is a copy held once it can no longer be served: a sweep every
//! [`SWEEP_EVERY`] drops the stale ones, so a read model that names members (a member page)
//! leaves memory within `MAX_AGE + SWEEP_EVERY` of its read, or of the commit (an erasure's)
//! that outdated it, whether or not anyone reads again.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::event_store::{CheckpointWatch, CommitChanges, CommitVersion};
use crate::projections::ProjectionName;

/// The longest a copy is used, heard of a commit or not.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// How many quarters of a copy's age bound pass before its next reader reads it again ahead
/// of time: a read under load has the rest, a quarter of [`MAX_AGE`], to land before
/// readers have to wait for one.
pub const REFRESH_AFTER_QUARTERS: u32 = 3;

/// How long a reader waits for another's read of the same key before reading itself.
pub const READ_WAIT: Duration = Duration::from_secs(1);

/// How often copies that can no longer be served are dropped from memory.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Values read from some projections' tables, each kept for as long as it is current.
pub struct Copies<K, V> {
    watch: CheckpointWatch,
    /// Keys kept before every copy is dropped: a bound on memory.
    capacity: usize,
    /// [`MAX_AGE`] in milliseconds, unless a test set another.
    max_age_ms: Arc<AtomicU64>,
    kept: Arc<Mutex<HashMap<K, Kept<V>>>>,
    /// Each key's last read (when it began, what it found), behind the lock its next reader
    /// takes: one read at a time per key, shared by the readers queued behind it (a commit
    /// wakes every open dashboard at once).
    last_reads: Arc<Mutex<HashMap<K, LastRead<V>>>>,
}

// Not derived: the values may name members, and a `{:?}` must not put them in a log.
impl<K, V> std::fmt::Debug for Copies<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Copies")
            .field("watch", &self.watch)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

// Not derived: a derive would ask `K` and `V` to be `Clone` for the handles' sake.
impl<K, V> Clone for Copies<K, V> {
    fn clone(&self) -> Self {
        Self {
            watch: self.watch.clone(),
            capacity: self.capacity,
            max_age_ms: Arc::clone(&self.max_age_ms),
            kept: Arc::clone(&self.kept),
            last_reads: Arc::clone(&self.last_reads),
        }
    }
}

type LastRead<V> = Arc<tokio::sync::Mutex<Option<(Instant, V)>>>;

#[derive(Debug)]
struct Kept<V> {
    value: V,
    version: CommitVersion,
    /// When the read began: the copy's age counts from there.
    read_at: Instant,
}

impl<K: Hash + Eq + Clone, V: Clone> Copies<K, V> {
    /// Copies of what is read from `projections`' tables in `pool`'s database, at most
    /// `capacity` keys (inside the runtime: it starts listening for commits).
    pub fn new(pool: &PgPool, projections: &[ProjectionName], capacity: usize) -> Self
    where
        K: Send + 'static,
        V: Send + 'static,
    {
        let names: Vec<&'static str> = projections.iter().map(|p| p.as_str()).collect();
        let copies = Self {
            watch: CheckpointWatch::new(pool, &names),
            capacity,
            max_age_ms: Arc::new(AtomicU64::new(MAX_AGE.as_millis() as u64)),
            kept: Arc::default(),
            last_reads: Arc::default(),
        };
        tokio::spawn(sweep(
            copies.watch.clone(),
            Arc::clone(&copies.max_age_ms),
            Arc::downgrade(&copies.kept),
            Arc::downgrade(&copies.last_reads),
        ));
        copies
    }

    /// Bounds a copy's age by `max_age` (at least 1 ms) instead of [`MAX_AGE`], in every clone.
    /// Tests lengthen it, so that only a commit (or a lost connection) can make a read again.
    pub fn set_max_age(&self, max_age: Duration) {
        let ms = u64::try_from(max_age.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.max_age_ms.store(ms, Ordering::Relaxed);
    }

    /// `key`'s value: the copy while it is current, else `read` (and kept). Past three quarters
    /// of its bound, one reader reads again ahead of time (the module's doc).
    ///
    /// Readers that miss together queue for one read: a read that began after a reader's call
    /// has seen every commit before it, so its value answers that reader too, kept or not.
    /// A reader waits [`READ_WAIT`] at most, then reads beside a read that is slow (a held
    /// lock, a struggling database) instead of queueing behind it.
    pub async fn get<E, Read>(&self, key: &K, read: impl FnOnce() -> Read) -> Result<V, E>
    where
        Read: Future<Output = Result<V, E>>,
        E: std::error::Error + 'static,
    {
        let called_at = Instant::now();
        let Some(version) = self.watch.version() else {
            // Nothing would say when a copy goes stale: every reader reads.
            return read().await;
        };
        if let Some((value, age)) = self.current_with_age(key, version) {
            if age < self.max_age() / 4 * REFRESH_AFTER_QUARTERS {
                return Ok(value);
            }
            return self.refresh(key, value, version, read).await;
        }
        let last_read = self.last_read_of(key);
        let Ok(mut last_read) = tokio::time::timeout(READ_WAIT, last_read.lock()).await else {
            return read().await;
        };
        if let Some((_, value)) = last_read
            .as_ref()
            .filter(|(started, _)| *started >= called_at)
        {
            return Ok(value.clone());
        }
        let version = self.watch.version();
        if let Some(value) = version.and_then(|v| self.current(key, v)) {
            return Ok(value);
        }
        // The last read served the readers queued for it; keeping it through this read would
        // hold it in memory for as long as the read takes.
        *last_read = None;
        let read_at = Instant::now();
        let value = read().await?;
        *last_read = Some((read_at, value.clone()));
        if let Some(version) = version.filter(|&v| self.watch.version() == Some(v)) {
            self.keep(key, &value, version, read_at);
        }
        Ok(value)
    }

    /// Wake-ups when a value may have changed, for subscribers that push it.
    pub fn changes(&self) -> CommitChanges {
        self.watch.changes()
    }

    /// Whether copies are kept now: only while this process hears the projections' commits.
    pub fn is_listening(&self) -> bool {
        self.watch.version().is_some()
    }

    /// Drops the copies read from any of `projections`: they have committed (the caller saw
    /// them apply a write), and the NOTIFY may not have arrived yet. Counted for every copy of
    /// this database in the process, whichever `Copies` is told.
    pub fn committed(&self, projections: &[ProjectionName]) {
        for projection in projections {
            self.watch.committed(projection.as_str());
        }
    }

    /// How many copies are kept now (each may be served).
    pub fn kept(&self) -> usize {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// How many values this process holds now, kept or last read (one being read counts):
    /// what the sweep bounds.
    pub fn held(&self) -> usize {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner()).len();
        let last_reads = self
            .last_reads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|last_read| last_read.try_lock().map_or(true, |read| read.is_some()))
            .count();
        kept + last_reads
    }

    fn max_age(&self) -> Duration {
        Duration::from_millis(self.max_age_ms.load(Ordering::Relaxed))
    }

    fn current(&self, key: &K, version: CommitVersion) -> Option<V> {
        self.current_with_age(key, version).map(|(value, _)| value)
    }

    /// The copy of `key` while it may be served, and how old it is.
    fn current_with_age(&self, key: &K, version: CommitVersion) -> Option<(V, Duration)> {
        let max_age = self.max_age();
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let k = kept.get(key)?;
        let age = k.read_at.elapsed();
        (k.version == version && age < max_age).then(|| (k.value.clone(), age))
    }

    /// Reads `key` again ahead of its copy's age bound, unless another reader already is (or
    /// the last reads are at capacity): then the copy, `current`, still answers. The copy is
    /// not held through the read (it may be outdated, an erasure's commit included, while the
    /// read takes its time); if the read fails, the copy answers only if it can still be
    /// served, and otherwise the error does.
    async fn refresh<E, Read>(
        &self,
        key: &K,
        current: V,
        version: CommitVersion,
        read: impl FnOnce() -> Read,
    ) -> Result<V, E>
    where
        Read: Future<Output = Result<V, E>>,
        E: std::error::Error + 'static,
    {
        let Some(last_read) = self.existing_last_read_of(key) else {
            return Ok(current);
        };
        let Ok(mut last_read) = last_read.try_lock() else {
            return Ok(current);
        };
        drop(current);
        // Nobody queues for this read (the copy answers meanwhile): it is kept, not shared.
        *last_read = None;
        let read_at = Instant::now();
        match read().await {
            Ok(value) => {
                if self.watch.version() == Some(version) {
                    self.keep(key, &value, version, read_at);
                }
                Ok(value)
            }
            Err(error) => match self.watch.version().and_then(|v| self.current(key, v)) {
                Some(copy) => {
                    tracing::warn!(
                        error = %crate::error_chain(&error),
                        "reading a copy again ahead of its age bound failed; the copy answers"
                    );
                    Ok(copy)
                }
                None => Err(error),
            },
        }
    }

    /// `key`'s last read, added if need be, but never by dropping the others' (as
    /// [`Self::last_read_of`] does at capacity): an early read is not worth the readers queued
    /// behind the others' reads.
    fn existing_last_read_of(&self, key: &K) -> Option<LastRead<V>> {
        let mut last_reads = self.last_reads.lock().unwrap_or_else(|e| e.into_inner());
        if last_reads.len() >= self.capacity && !last_reads.contains_key(key) {
            return None;
        }
        Some(Arc::clone(last_reads.entry(key.clone()).or_default()))
    }

    fn last_read_of(&self, key: &K) -> LastRead<V> {
        let mut last_reads = self.last_reads.lock().unwrap_or_else(|e| e.into_inner());
        if last_reads.len() >= self.capacity && !last_reads.contains_key(key) {
            // A reader holding a dropped entry keeps its own Arc and finishes as before.
            last_reads.clear();
        }
        Arc::clone(last_reads.entry(key.clone()).or_default())
    }

    fn keep(&self, key: &K, value: &V, version: CommitVersion, read_at: Instant) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= self.capacity && !kept.contains_key(key) {
            kept.clear();
        }
        kept.insert(
            key.clone(),
            Kept {
                value: value.clone(),
                version,
                read_at,
            },
        );
    }
}

/// Drops, every [`SWEEP_EVERY`], the copies and last reads that can no longer be served; ends
/// once the `Copies` (every clone) is dropped.
async fn sweep<K, V>(
    watch: CheckpointWatch,
    max_age_ms: Arc<AtomicU64>,
    kept: Weak<Mutex<HashMap<K, Kept<V>>>>,
    last_reads: Weak<Mutex<HashMap<K, LastRead<V>>>>,
) {
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        let (Some(kept), Some(last_reads)) = (kept.upgrade(), last_reads.upgrade()) else {
            return;
        };
        let max_age = Duration::from_millis(max_age_ms.load(Ordering::Relaxed));
        let version = watch.version();
        kept.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, k| Some(k.version) == version && k.read_at.elapsed() < max_age);
        // A last read serves the readers queued for it while it is made, and it is locked
        // until the last of them took it; unlocked, it serves nobody (a reader about to queue
        // reads itself).
        last_reads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, last_read| last_read.try_lock().is_err());
    }
}
