//! Live notification: appends `NOTIFY` [`NOTIFY_CHANNEL`] with `<clinic>:<position>`, so
//! subscribers wake at once instead of polling. Notifications are hints, not data: they can be
//! lost (a connection down, a process killed between commit and notify), so every subscriber
//! also polls on a timer.
//!
//! Subscribers in the appending process are woken at once, in memory (the projection runners
//! of `clinic serve`, so a mutation's read-your-writes wait is not delayed). For other
//! processes, the NOTIFY is sent just after the append commits, by one task per store that
//! sends at most one NOTIFY per clinic every [`NOTIFY_COALESCE`] (a lone append at once, a burst
//! gathered), not inside the
//! append's transaction: PostgreSQL serialises the commits of notifying transactions on one
//! lock, which cost 40% of the throughput of 8 concurrent writers when measured (pgbench, 2211
//! vs 3733 appends/s), and a NOTIFY per append halved single-event append throughput again
//! (README "Benchmarks").
//!
//! The same LISTEN connection hears projections' commits ([`CHECKPOINT_CHANNEL`], sent by a
//! trigger on their checkpoints), which [`CheckpointWatch`] turns into a version a cache of a
//! read model compares.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgNotification, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::{broadcast, watch};

/// The channel appends notify.
pub const NOTIFY_CHANNEL: &str = "clinic_events";

/// The channel a projection's commit notifies, with the projection's name (migration 15's
/// trigger on `projection_checkpoints`: delivered when the page's writes commit).
pub const CHECKPOINT_CHANNEL: &str = "clinic_checkpoints";

/// After a NOTIFY, how long the next one waits to gather the appends that follow: the most
/// another process's subscribers wait during a burst (a lone append is announced at once; this
/// process's subscribers are always woken at once).
pub const NOTIFY_COALESCE: Duration = Duration::from_millis(20);

/// Sends the notifications of one store's appends: in memory at once, NOTIFY coalesced.
#[derive(Debug)]
pub(crate) struct Notifier {
    pool: PgPool,
    local: broadcast::Sender<EventNotification>,
    pending: Mutex<BTreeMap<String, i64>>,
    wake: tokio::sync::Notify,
    task: OnceLock<()>,
}

/// Which database `pool` reaches: server and database name.
fn bus_key(pool: &PgPool) -> String {
    let options = pool.connect_options();
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    )
}

/// The in-process wake-up channel of each database this process appends to or listens on
/// (keyed by server and database, so tests with a database each do not wake one another).
fn local_bus(pool: &PgPool) -> broadcast::Sender<EventNotification> {
    static BUSES: Registry<broadcast::Sender<EventNotification>> = OnceLock::new();
    per_database(&BUSES, pool, || broadcast::channel(1024).0)
}

/// One value per database this process reaches, keyed as [`bus_key`] keys.
type Registry<T> = OnceLock<Mutex<HashMap<String, T>>>;

/// `registry`'s value for `pool`'s database, made by `make` the first time.
fn per_database<T: Clone>(
    registry: &'static Registry<T>,
    pool: &PgPool,
    make: impl FnOnce() -> T,
) -> T {
    registry
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(bus_key(pool))
        .or_insert_with(make)
        .clone()
}

impl Notifier {
    pub(crate) fn new(pool: PgPool) -> Arc<Self> {
        Arc::new(Self {
            local: local_bus(&pool),
            pool,
            pending: Mutex::new(BTreeMap::new()),
            wake: tokio::sync::Notify::new(),
            task: OnceLock::new(),
        })
    }

    /// Records that `clinic` gained events up to `position`: local subscribers wake now, the
    /// NOTIFY follows within [`NOTIFY_COALESCE`].
    pub(crate) fn appended(self: &Arc<Self>, clinic: &crate::clinic::ClinicId, position: i64) {
        // No receiver is fine: nobody in this process follows the log.
        let _ = self.local.send(EventNotification {
            clinic: clinic.to_string(),
            position,
        });
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let last = pending.entry(clinic.to_string()).or_insert(position);
            *last = (*last).max(position);
        }
        self.task.get_or_init(|| {
            let notifier = Arc::downgrade(self);
            tokio::spawn(async move { Self::run(notifier).await });
        });
        self.wake.notify_one();
    }

    async fn run(notifier: std::sync::Weak<Self>) {
        let Some(mut this) = notifier.upgrade() else {
            return;
        };
        loop {
            let woken = tokio::time::timeout(Duration::from_secs(5), this.wake.notified()).await;
            let batch =
                std::mem::take(&mut *this.pending.lock().unwrap_or_else(|e| e.into_inner()));
            for (clinic, position) in batch {
                let payload = format!("{clinic}:{position}");
                if let Err(error) = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(NOTIFY_CHANNEL)
                    .bind(&payload)
                    .execute(&this.pool)
                    .await
                {
                    // Subscribers poll as well; a lost notification only delays them.
                    tracing::warn!(error = %error, "could not notify subscribers");
                }
            }
            if woken.is_ok() {
                // The first append of a quiet spell is announced at once; those of the next
                // NOTIFY_COALESCE gather into the following NOTIFY.
                tokio::time::sleep(NOTIFY_COALESCE).await;
            }
            // Hold the notifier while it owes a NOTIFY (a store dropped meanwhile still sends
            // it); otherwise let it go, and end with the store.
            let owes = !this
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty();
            if !owes {
                drop(this);
                let Some(again) = notifier.upgrade() else {
                    return;
                };
                this = again;
            }
        }
    }
}

/// One append's notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventNotification {
    /// The clinic appended to.
    pub clinic: String,
    /// The position of the append's last event.
    pub position: i64,
}

/// A subscriber's wake-ups: this process's own appends, and the NOTIFYs of other processes,
/// both through the process's in-memory bus.
pub struct Notifications {
    local: broadcast::Receiver<EventNotification>,
}

impl Notifications {
    /// Starts listening. Every listener of a process shares one LISTEN connection per database
    /// ([`listen_for_the_process`]), outside `pool`: a listener per runner and per open
    /// dashboard would hold a connection each, and a few open dashboards would hold the API's
    /// whole pool (or, outside it, the server's connections without limit). Call it inside the
    /// runtime: the first listener of a database starts the process's listening task.
    pub fn listen(pool: &PgPool) -> Self {
        let bus = local_bus(pool);
        let local = bus.subscribe();
        listen_for_the_process(pool, bus);
        Self { local }
    }

    /// The next notification (from this process or another), or `None` when `timeout` passes
    /// first or some were missed (the caller reads the log then). Nothing to fail here: a lost
    /// LISTEN connection is the listening task's to restore.
    pub async fn next(&mut self, timeout: Duration) -> Option<EventNotification> {
        let local = &mut self.local;
        let next = async {
            match local.recv().await {
                Ok(first) => Some(latest(local, first)),
                Err(_) => None,
            }
        };
        tokio::time::timeout(timeout, next).await.unwrap_or(None)
    }
}

/// The databases (keyed as [`local_bus`] keys them) whose NOTIFYs a task of this process is
/// forwarding to the bus.
fn forwarding() -> &'static Mutex<BTreeSet<String>> {
    static FORWARDING: OnceLock<Mutex<BTreeSet<String>>> = OnceLock::new();
    FORWARDING.get_or_init(Mutex::default)
}

/// Makes sure one task of this process listens to `pool`'s database and forwards its NOTIFYs
/// to `bus`. The task reconnects when its connection drops, and ends once nobody in the
/// process listens any more (checked every second, under the same lock as a start, so a
/// listener that arrives as it ends starts the next one).
fn listen_for_the_process(pool: &PgPool, bus: broadcast::Sender<EventNotification>) {
    let key = bus_key(pool);
    let commits = projection_commits(pool);
    {
        let mut forwarding = forwarding().lock().unwrap_or_else(|e| e.into_inner());
        if !forwarding.insert(key.clone()) {
            return;
        }
    }
    // Made before the task, so a task dropped before its first poll still lets go.
    let mut registration = Registration {
        key,
        commits,
        released: false,
    };
    let options = (*pool.connect_options()).clone();
    tokio::spawn(async move {
        loop {
            // A connection of its own, kept open while it listens (as `PgListener::connect`).
            let own = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .max_lifetime(None)
                .idle_timeout(None)
                .connect_lazy_with(options.clone());
            let listening = async {
                let mut listener = PgListener::connect_with(&own).await?;
                // A lost connection is answered at once (`Ok(None)`), not after a reconnection
                // inside the call, which the 1 s timeout below could cut short, unnoticed.
                listener.eager_reconnect(false);
                listener
                    .listen_all([NOTIFY_CHANNEL, CHECKPOINT_CHANNEL])
                    .await?;
                Ok::<_, sqlx::Error>(listener)
            };
            match listening.await {
                Ok(mut listener) => {
                    registration.commits().listening(true);
                    loop {
                        // `try_recv`, not `recv`: `recv` reconnects by itself and says nothing of
                        // the notifications lost meanwhile, which a cache must hear of.
                        let received = listener.try_recv();
                        match tokio::time::timeout(Duration::from_secs(1), received).await {
                            Ok(Ok(Some(notification))) => {
                                forward(&notification, &bus, &mut registration.commits());
                            }
                            Ok(Ok(None)) => {
                                // Subscribers poll meanwhile; the next round reconnects.
                                tracing::debug!("the LISTEN connection was lost");
                                break;
                            }
                            Ok(Err(error)) => {
                                tracing::debug!(%error, "the LISTEN connection failed");
                                break;
                            }
                            Err(_) => {}
                        }
                        if registration.release_if_unused(&bus) {
                            drop(listener);
                            own.close().await;
                            return;
                        }
                    }
                    registration.commits().listening(false);
                }
                Err(error) => tracing::debug!(%error, "could not LISTEN; trying again"),
            }
            own.close().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            if registration.release_if_unused(&bus) {
                return;
            }
        }
    });
}

/// A listening task's hold on its database in [`forwarding`]. However the task ends (its
/// runtime shut down included), the database is free for the next task to start, and nobody
/// is told commits are heard any more.
struct Registration {
    key: String,
    commits: Arc<Mutex<ProjectionCommits>>,
    released: bool,
}

impl Registration {
    fn commits(&self) -> std::sync::MutexGuard<'_, ProjectionCommits> {
        self.commits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets go once no subscriber holds the bus and no watch holds the commit counts (held then
    /// only by their registry and this registration); under the lock a start takes, so a
    /// listener arriving meanwhile starts the next task.
    fn release_if_unused(&mut self, bus: &broadcast::Sender<EventNotification>) -> bool {
        let mut forwarding = forwarding().lock().unwrap_or_else(|e| e.into_inner());
        let unused = bus.receiver_count() == 0 && Arc::strong_count(&self.commits) <= 2;
        if unused {
            self.release(&mut forwarding);
        }
        unused
    }

    fn release(&mut self, forwarding: &mut BTreeSet<String>) {
        forwarding.remove(&self.key);
        self.commits().listening(false);
        self.released = true;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if !self.released {
            let forwarding = forwarding();
            let mut forwarding = forwarding.lock().unwrap_or_else(|e| e.into_inner());
            self.release(&mut forwarding);
        }
    }
}

/// Hands a notification to whoever waits for it: an append's to the bus, a projection's commit
/// to the commit counts.
fn forward(
    notification: &PgNotification,
    bus: &broadcast::Sender<EventNotification>,
    commits: &mut ProjectionCommits,
) {
    match notification.channel() {
        NOTIFY_CHANNEL => {
            if let Some(notification) = parse(notification.payload()) {
                let _ = bus.send(notification);
            }
        }
        CHECKPOINT_CHANNEL => commits.committed(notification.payload()),
        _ => {}
    }
}

/// What this process has heard of projections' commits on one database.
#[derive(Debug)]
struct ProjectionCommits {
    /// Whether the LISTEN connection is up: only then is a commit heard of.
    listening: bool,
    /// How often commits may have gone unheard (the connection lost, or not yet made).
    missed: u64,
    /// Commits heard of (or counted by this process itself), per projection.
    heard: HashMap<String, u64>,
    /// Wakes [`CommitChanges`] at each of the above.
    signal: watch::Sender<()>,
}

impl Default for ProjectionCommits {
    fn default() -> Self {
        Self {
            listening: false,
            missed: 0,
            heard: HashMap::new(),
            signal: watch::Sender::new(()),
        }
    }
}

impl ProjectionCommits {
    fn listening(&mut self, up: bool) {
        self.listening = up;
        self.missed();
    }

    fn missed(&mut self) {
        self.missed += 1;
        self.signal.send_replace(());
    }

    /// Counts `projection`'s commits from now on (those of projections nobody watches, or
    /// whatever else a NOTIFY on the channel says, are not kept).
    fn watch(&mut self, projection: &str) {
        self.heard.entry(projection.to_owned()).or_default();
    }

    fn committed(&mut self, projection: &str) {
        if let Some(heard) = self.heard.get_mut(projection) {
            *heard += 1;
            self.signal.send_replace(());
        }
    }

    /// `projections`' commits together: each count only grows, so equal sums mean none moved.
    fn version(&self, projections: &[&str]) -> Option<CommitVersion> {
        self.listening.then(|| CommitVersion {
            missed: self.missed,
            heard: projections
                .iter()
                .map(|p| self.heard.get(*p).copied().unwrap_or(0))
                .sum(),
        })
    }
}

/// The commit counts of each database this process listens to (keyed as [`local_bus`] keys).
fn projection_commits(pool: &PgPool) -> Arc<Mutex<ProjectionCommits>> {
    static COMMITS: Registry<Arc<Mutex<ProjectionCommits>>> = OnceLock::new();
    per_database(&COMMITS, pool, Arc::default)
}

/// Where some projections' commits stood, as this process heard of them: two equal versions
/// mean it heard of no commit of those projections in between, and missed none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitVersion {
    missed: u64,
    heard: u64,
}

/// Tells a cache of a projection's tables whether the projection may have committed since the
/// cache read them: for a copy that is dropped as soon as it may be stale, instead of one that
/// is re-read on a timer.
#[derive(Debug, Clone)]
pub struct CheckpointWatch {
    commits: Arc<Mutex<ProjectionCommits>>,
    projections: Arc<[&'static str]>,
}

impl CheckpointWatch {
    /// Watches `projections` (their checkpoints' names) on `pool`'s database, through the
    /// process's LISTEN connection (started here if need be; call it inside the runtime).
    pub fn new(pool: &PgPool, projections: &[&'static str]) -> Self {
        let commits = projection_commits(pool);
        {
            let mut watched = commits.lock().unwrap_or_else(|e| e.into_inner());
            for projection in projections {
                watched.watch(projection);
            }
        }
        listen_for_the_process(pool, local_bus(pool));
        Self {
            commits,
            projections: projections.into(),
        }
    }

    /// Where the projections' commits stand now; `None` while this process is not listening
    /// (nothing would tell it of a commit: read the tables instead of a copy).
    pub fn version(&self) -> Option<CommitVersion> {
        self.commits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .version(&self.projections)
    }

    /// Counts a commit of `projection` this process learnt of by itself, ahead of its NOTIFY
    /// (a mutation saw the projection apply its write): a copy read from it before is stale
    /// from now, in every watch of this database. Projections nobody watches are ignored.
    pub fn committed(&self, projection: &str) {
        self.commits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .committed(projection);
    }

    /// Wake-ups at each change of [`Self::version`] (of any projection: cheap to check), for
    /// a subscriber that pushes a read model when it changes.
    pub fn changes(&self) -> CommitChanges {
        let signal = self
            .commits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .signal
            .subscribe();
        CommitChanges {
            signal,
            _watch: self.clone(),
        }
    }
}

/// A subscriber's wake-ups at projections' commits (see [`CheckpointWatch::changes`]).
#[derive(Debug)]
pub struct CommitChanges {
    signal: watch::Receiver<()>,
    /// Keeps the process listening while the subscriber waits.
    _watch: CheckpointWatch,
}

impl CommitChanges {
    /// Marks every change so far as seen: call it before reading, so a commit that lands
    /// during the read still wakes the next [`Self::next`].
    pub fn seen(&mut self) {
        self.signal.borrow_and_update();
    }

    /// Waits until a change after the last [`Self::seen`], or `timeout` (a poll: whatever no
    /// NOTIFY announces).
    pub async fn next(&mut self, timeout: Duration) {
        // The sender lives in the process's registry: `changed` cannot fail.
        let _ = tokio::time::timeout(timeout, self.signal.changed()).await;
    }
}

/// The newest of `first` and whatever else is queued already: one wake-up for a burst of
/// appends, as the coalesced NOTIFY gives other processes.
fn latest(
    local: &mut broadcast::Receiver<EventNotification>,
    first: EventNotification,
) -> EventNotification {
    let mut newest = first;
    loop {
        match local.try_recv() {
            Ok(next) => {
                if next.position > newest.position {
                    newest = next;
                }
            }
            Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => return newest,
        }
    }
}

fn parse(payload: &str) -> Option<EventNotification> {
    let (clinic, position) = payload.rsplit_once(':')?;
    Some(EventNotification {
        clinic: clinic.to_owned(),
        position: position.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_projections_version_moves_with_its_commits_and_every_miss_only() {
        let mut commits = ProjectionCommits::default();
        commits.watch("members");
        commits.watch("groups");
        assert_eq!(commits.version(&["members"]), None, "not listening yet");
        commits.listening(true);
        let start = commits.version(&["members"]).unwrap();
        let both = commits.version(&["members", "groups"]).unwrap();
        commits.committed("groups");
        assert_eq!(
            commits.version(&["members"]),
            Some(start),
            "another projection"
        );
        assert_ne!(
            commits.version(&["members", "groups"]),
            Some(both),
            "one of the projections watched together"
        );
        commits.committed("members");
        let committed = commits.version(&["members"]).unwrap();
        assert_ne!(committed, start);
        commits.missed();
        assert_ne!(
            commits.version(&["members"]),
            Some(committed),
            "a commit may be unheard"
        );
        commits.listening(false);
        assert_eq!(commits.version(&["members"]), None);
    }

    #[test]
    fn payloads_are_clinic_and_position() {
        assert_eq!(
            parse("north:42"),
            Some(EventNotification {
                clinic: "north".into(),
                position: 42
            })
        );
        assert_eq!(parse("garbage"), None);
    }
}
