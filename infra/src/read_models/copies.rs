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

    /// `key`'s value: the copy while it is current, else `read` (and kept).
    ///
    /// Readers that miss together queue for one read: a read that began after a reader's call
    /// has seen every commit before it, so its value answers that reader too, kept or not.
    /// A reader waits [`READ_WAIT`] at most, then reads beside a read that is slow (a held
    /// lock, a struggling database) instead of queueing behind it.
    pub async fn get<E, Read>(&self, key: &K, read: impl FnOnce() -> Read) -> Result<V, E>
    where
        Read: Future<Output = Result<V, E>>,
    {
        let called_at = Instant::now();
        let Some(version) = self.watch.version() else {
            // Nothing would say when a copy goes stale: every reader reads.
            return read().await;
        };
        if let Some(value) = self.current(key, version) {
            return Ok(value);
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
        let max_age = self.max_age();
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.get(key)
            .filter(|k| k.version == version && k.read_at.elapsed() < max_age)
            .map(|k| k.value.clone())
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
