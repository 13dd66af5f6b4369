//! Per-member data keys for crypto-shredding: created on a member's first personal field,
//! stored wrapped by the master key in `member_keys`, destroyed to erase the member.
//!
//! Unwrapped keys are cached in the process for [`CACHE_TTL`], so appends and projections do
//! not pay a round trip per event. An erasure evicts the key from this process's cache at once;
//! another process of the same deployment may still read the member's fields from its cache for
//! at most [`CACHE_TTL`] (the key is gone from the database, so it cannot come back later).

mod cipher;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::{PgExecutor, PgPool, Row};
use uuid::Uuid;

pub use cipher::{DataKey, MasterKey, MasterKeyError};

use crate::clinic::ClinicId;

/// How long an unwrapped key is trusted without asking the database again.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// Why a key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The database failed.
    #[error("member key store: {0}")]
    Database(#[from] sqlx::Error),
    /// The configured master key did not wrap the stored keys: reading would show nothing and
    /// writing would mix keys, so the service refuses to go on.
    #[error(
        "CLINIC_MASTER_KEY (id {configured}) is not the master key of this database: its data \
         keys are wrapped by {stored}; set the right key, or (keys under two master keys: a \
         process kept writing with the old key during a rotation) run `clinic rotate-master-key` \
         again with CLINIC_MASTER_KEY=old and CLINIC_NEW_MASTER_KEY=new"
    )]
    WrongMasterKey {
        /// The id of the configured key.
        configured: String,
        /// The ids of the keys that wrap stored data keys.
        stored: String,
    },
    /// A stored wrapped key did not unwrap although its master key id matches: altered bytes.
    #[error("the data key of member {member} does not unwrap: the key row was altered")]
    Corrupt {
        /// The member whose key row is damaged.
        member: Uuid,
    },
}

/// The data keys of the deployment, behind the master key. Cheap to clone (one shared cache).
#[derive(Clone)]
pub struct Keyring {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    master: MasterKey,
    cache: Mutex<HashMap<Uuid, Cached>>,
}

#[derive(Clone)]
enum Cached {
    Live {
        key: Arc<DataKey>,
        fetched: Instant,
    },
    /// Destroyed keys never come back, so this entry never expires.
    Destroyed,
}

/// The keys a batch of rows needs: `None` for a member whose key is destroyed (or was never
/// created), whose fields therefore read as a placeholder.
#[derive(Debug, Default, Clone)]
pub struct KeySet {
    keys: HashMap<Uuid, Option<Arc<DataKey>>>,
    /// Members whose key row exists (live or destroyed).
    found: HashSet<Uuid>,
}

impl KeySet {
    /// The member's key, if it still exists.
    pub fn get(&self, member: Uuid) -> Option<&DataKey> {
        self.keys.get(&member).and_then(Option::as_deref)
    }
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("master", &self.inner.master)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// The keyring of the database behind `pool`, unlocked by `master`.
    pub fn new(pool: PgPool, master: MasterKey) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                master,
                cache: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The database the keys live in.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The master key's public id.
    pub fn master_key_id(&self) -> &str {
        self.inner.master.id()
    }

    /// Refuses a master key that does not wrap the stored data keys (checked at start-up, so a
    /// mistyped key fails loudly instead of making every member unreadable).
    pub async fn check_master_key(&self) -> Result<(), KeyringError> {
        let stored = master_key_ids(&self.inner.pool).await?;
        if stored.is_empty() || (stored.len() == 1 && stored[0] == self.master_key_id()) {
            return Ok(());
        }
        Err(self.wrong_master_key(&stored))
    }

    /// The refusal of this keyring's master key where `stored` ones wrap the data keys.
    fn wrong_master_key(&self, stored: &[String]) -> KeyringError {
        KeyringError::WrongMasterKey {
            configured: self.master_key_id().to_owned(),
            stored: stored.join(", "),
        }
    }

    /// The key that seals `member`'s new personal fields, created on first use; `None` once
    /// the member is erased (their fields are then written as a placeholder, never in clear).
    pub async fn writing_key(
        &self,
        clinic: &ClinicId,
        member: Uuid,
    ) -> Result<Option<Arc<DataKey>>, KeyringError> {
        if let Some(cached) = self.cached(member) {
            return Ok(cached);
        }
        let fresh = DataKey::generate();
        let wrapped = self.inner.master.wrap(member, &fresh);
        sqlx::query(include_str!("keyring/sql/insert_key.sql"))
            .bind(member)
            .bind(clinic.as_str())
            .bind(&wrapped)
            .bind(self.master_key_id())
            .execute(&self.inner.pool)
            .await?;
        // Whoever inserted first, the stored row is the member's key. No row at all means the
        // insert was refused because another master key wraps this database's keys (a rotation
        // this process has not followed): refuse to write rather than write a placeholder.
        let keys = self.reading_keys(&self.inner.pool, [member]).await?;
        match keys.found.contains(&member) {
            true => Ok(keys.keys.get(&member).cloned().flatten()),
            false => Err(self.wrong_master_key(&master_key_ids(&self.inner.pool).await?)),
        }
    }

    /// The keys of `members`, from the cache or in one query for those not cached, run on
    /// `executor` (a projection passes its page's transaction, so it never waits for a second
    /// connection while holding one).
    pub async fn reading_keys<'e>(
        &self,
        executor: impl PgExecutor<'e>,
        members: impl IntoIterator<Item = Uuid>,
    ) -> Result<KeySet, KeyringError> {
        let mut set = KeySet::default();
        let mut missing = Vec::new();
        for member in members.into_iter().collect::<HashSet<_>>() {
            match self.cached(member) {
                Some(key) => {
                    set.keys.insert(member, key);
                    set.found.insert(member);
                }
                None => missing.push(member),
            }
        }
        if missing.is_empty() {
            return Ok(set);
        }
        self.fetch_keys(executor, set, missing).await
    }

    /// The keys of `members` as the database holds them now, never from this process's cache
    /// (which then learns what was read): for reads that show a person's fields to a person
    /// (a history, a past state, an accounting of disclosures), so an erasure committed by
    /// another process is honoured at once rather than when the cached key expires. One query.
    pub async fn current_keys<'e>(
        &self,
        executor: impl PgExecutor<'e>,
        members: impl IntoIterator<Item = Uuid>,
    ) -> Result<KeySet, KeyringError> {
        let members = members.into_iter().collect::<HashSet<_>>();
        if members.is_empty() {
            return Ok(KeySet::default());
        }
        self.fetch_keys(executor, KeySet::default(), members.into_iter().collect())
            .await
    }

    /// `set` completed with the keys of `missing`, read from the database and remembered.
    async fn fetch_keys<'e>(
        &self,
        executor: impl PgExecutor<'e>,
        mut set: KeySet,
        missing: Vec<Uuid>,
    ) -> Result<KeySet, KeyringError> {
        let rows = sqlx::query(include_str!("keyring/sql/select_keys.sql"))
            .bind(&missing)
            .fetch_all(executor)
            .await?;
        let now = Instant::now();
        let mut cache = self.cache();
        for row in rows {
            let member: Uuid = row.try_get("member_id")?;
            let wrapped: Option<Vec<u8>> = row.try_get("wrapped_key")?;
            let entry = match wrapped {
                None => Cached::Destroyed,
                Some(wrapped) => {
                    let master_key_id: Option<String> = row.try_get("master_key_id")?;
                    if master_key_id.as_deref() != Some(self.master_key_id()) {
                        return Err(self.wrong_master_key(&Vec::from_iter(master_key_id)));
                    }
                    let key = self
                        .inner
                        .master
                        .unwrap(member, &wrapped)
                        .ok_or(KeyringError::Corrupt { member })?;
                    Cached::Live {
                        key: Arc::new(key),
                        fetched: now,
                    }
                }
            };
            set.found.insert(member);
            set.keys.insert(member, remember(&mut cache, member, entry));
        }
        // Members without a row never had personal data sealed: nothing to read. Not cached, so
        // a key created later is found.
        for member in missing {
            set.keys.entry(member).or_insert(None);
        }
        Ok(set)
    }

    /// Destroys `member`'s data key (leaving a tombstone) and forgets it here. Returns whether a
    /// live key was destroyed now; destroying twice is harmless.
    pub async fn destroy(&self, clinic: &ClinicId, member: Uuid) -> Result<bool, KeyringError> {
        let destroyed = self
            .destroy_on(&self.inner.pool, clinic.as_str(), member)
            .await?;
        self.vacuum().await;
        Ok(destroyed)
    }

    /// Best effort: lets PostgreSQL drop the old row versions holding destroyed wrapped keys now
    /// rather than at the next autovacuum (useless without the master key either way).
    async fn vacuum(&self) {
        vacuum_member_keys(&self.inner.pool, "an erasure").await;
    }

    /// [`Keyring::vacuum`] a few seconds from now, after the caller's transaction (which
    /// destroyed a key and holds its row) has committed.
    pub(crate) fn vacuum_soon(&self) {
        let keyring = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            keyring.vacuum().await;
        });
    }

    /// [`Keyring::destroy`] on `executor` (the members projection destroys the key of every
    /// `MemberErased` it applies, in its page's transaction, so an erasure interrupted between
    /// its event and its key is completed by the projection), without the VACUUM.
    pub(crate) async fn destroy_on<'e>(
        &self,
        executor: impl PgExecutor<'e>,
        clinic: &str,
        member: Uuid,
    ) -> Result<bool, KeyringError> {
        let destroyed = sqlx::query(include_str!("keyring/sql/destroy_key.sql"))
            .bind(member)
            .bind(clinic)
            .fetch_optional(executor)
            .await?
            .is_some();
        self.cache().insert(member, Cached::Destroyed);
        Ok(destroyed)
    }

    fn cached(&self, member: Uuid) -> Option<Option<Arc<DataKey>>> {
        match self.cache().get(&member)? {
            Cached::Live { key, fetched } if fetched.elapsed() < CACHE_TTL => {
                Some(Some(key.clone()))
            }
            Cached::Live { .. } => None,
            Cached::Destroyed => Some(None),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Cached>> {
        // The map stays consistent whatever panicked while holding it (single inserts).
        self.inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Caches what the database said of `member`'s key and returns the key to use. A destroyed key
/// is never replaced: a read that started before an erasure committed may come back with the
/// live row after [`Keyring::destroy`] marked it destroyed, and must not resurrect it.
fn remember(
    cache: &mut HashMap<Uuid, Cached>,
    member: Uuid,
    entry: Cached,
) -> Option<Arc<DataKey>> {
    match cache.entry(member) {
        std::collections::hash_map::Entry::Occupied(mut occupied) => {
            if !matches!(occupied.get(), Cached::Destroyed) {
                occupied.insert(entry);
            }
            entry_key(occupied.get())
        }
        std::collections::hash_map::Entry::Vacant(vacant) => entry_key(vacant.insert(entry)),
    }
}

fn entry_key(entry: &Cached) -> Option<Arc<DataKey>> {
    match entry {
        Cached::Live { key, .. } => Some(key.clone()),
        Cached::Destroyed => None,
    }
}

/// The ids of the master keys that wrap live data keys.
async fn master_key_ids(pool: &PgPool) -> Result<Vec<String>, KeyringError> {
    Ok(
        sqlx::query_scalar(include_str!("keyring/sql/master_key_ids.sql"))
            .fetch_all(pool)
            .await?,
    )
}

/// What a master key rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Data keys re-wrapped under the new master key.
    pub rewrapped: usize,
    /// Data keys that were already under the new key (a resumed rotation).
    pub already_rotated: usize,
}

/// `VACUUM member_keys`, best effort: the old row versions of an update still hold what it
/// replaced (a destroyed key, keys wrapped under a retired master key) until vacuumed. A role
/// that may not vacuum the table gets no error from PostgreSQL (only a notice, and the table is
/// skipped), so that is asked first; either way a warning names what to run: the erasure or
/// rotation stands, but what it meant to remove stays on disk until a VACUUM (autovacuum's, or
/// the owner's).
async fn vacuum_member_keys(pool: &PgPool, after: &str) {
    let allowed: Result<bool, sqlx::Error> =
        sqlx::query_scalar(include_str!("keyring/sql/may_vacuum.sql"))
            .fetch_one(pool)
            .await;
    let failure = match allowed {
        Ok(true) => match sqlx::query("VACUUM member_keys").execute(pool).await {
            Ok(_) => return,
            Err(error) => error.to_string(),
        },
        Ok(false) => "this role may not vacuum it".to_owned(),
        Err(error) => error.to_string(),
    };
    tracing::warn!(
        error = %failure,
        "VACUUM member_keys after {after} failed: the replaced rows stay on disk until a \
         VACUUM (autovacuum's, or `VACUUM member_keys` run by the table's owner)"
    );
}

/// Re-wraps every live data key from `old` to `new` in one transaction; `events` is not
/// touched (the ciphertexts there are under the data keys, which do not change). Safe to run
/// again after an interruption: keys already under `new` are left alone.
pub async fn rotate_master_key(
    pool: &PgPool,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<Rotation, KeyringError> {
    let mut tx = pool.begin().await?;
    // New keys wait until the rotation commits, then (insert_key.sql) refuse to be wrapped by
    // any but the one master key of the table.
    sqlx::query("LOCK TABLE member_keys IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let rows = sqlx::query(include_str!("keyring/sql/lock_keys_for_rotation.sql"))
        .fetch_all(&mut *tx)
        .await?;
    let mut members = Vec::with_capacity(rows.len());
    let mut wrapped_keys = Vec::with_capacity(rows.len());
    let mut already_rotated = 0;
    for row in rows {
        let member: Uuid = row.try_get("member_id")?;
        let wrapped: Vec<u8> = row.try_get("wrapped_key")?;
        let master_key_id: String = row.try_get("master_key_id")?;
        if master_key_id == new.id() {
            already_rotated += 1;
            continue;
        }
        if master_key_id != old.id() {
            return Err(KeyringError::WrongMasterKey {
                configured: old.id().to_owned(),
                stored: master_key_id,
            });
        }
        let key = old
            .unwrap(member, &wrapped)
            .ok_or(KeyringError::Corrupt { member })?;
        members.push(member);
        wrapped_keys.push(new.wrap(member, &key));
    }
    sqlx::query(include_str!("keyring/sql/rewrap_keys.sql"))
        .bind(&members)
        .bind(&wrapped_keys)
        .bind(new.id())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    // The replaced row versions hold every key wrapped under `old`, the key being retired
    // (perhaps because it leaked): dropped now rather than at the next autovacuum.
    vacuum_member_keys(pool, "a master key rotation").await;
    Ok(Rotation {
        rewrapped: members.len(),
        already_rotated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destroyed_key_is_never_brought_back_by_a_late_read() {
        let mut cache = HashMap::new();
        let member = Uuid::new_v4();
        let live = || Cached::Live {
            key: Arc::new(DataKey::generate()),
            fetched: Instant::now(),
        };
        assert!(remember(&mut cache, member, live()).is_some());
        assert!(remember(&mut cache, member, Cached::Destroyed).is_none());
        // A read that began before the erasure committed comes back with the live row.
        assert!(remember(&mut cache, member, live()).is_none());
        assert!(matches!(cache.get(&member), Some(Cached::Destroyed)));
    }
}
