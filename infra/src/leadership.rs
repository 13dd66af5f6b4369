//! One active instance across processes: a PostgreSQL session-level advisory lock held on a
//! connection of its own. The lock ends with the connection, so when the leading process dies
//! (or its connection does) another process's next attempt takes over.
//!
//! Also the stop signal of background loops: a `watch` channel that turns `true` on shutdown.

use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;

use crate::db::Superseded;

/// The advisory-lock key space of this service (the first of the two-int keys), so its locks
/// never collide with the event store's per-stream `pg_advisory_xact_lock(bigint)` locks.
const LOCK_SPACE: i32 = 0x636c_696e; // "clin"

/// A dedicated connection that may hold the lock named by `name`.
pub(crate) struct Candidate {
    name: String,
    conn: Option<PgConnection>,
}

/// Holding the lock: drop it (or let the connection die) to give it up.
pub(crate) struct Leader {
    conn: PgConnection,
}

impl Candidate {
    /// A candidate for the lock `name` (e.g. `projection:members`, `scheduler`).
    pub(crate) fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            conn: None,
        }
    }

    /// Takes the lock if no other session holds it; `None` means someone else leads.
    pub(crate) async fn try_lead(&mut self, pool: &PgPool) -> Result<Option<Leader>, sqlx::Error> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => PgConnection::connect_with(&pool.connect_options()).await?,
        };
        let acquired: bool = sqlx::query_scalar(include_str!("leadership/sql/try_lock.sql"))
            .bind(LOCK_SPACE)
            .bind(&self.name)
            .fetch_one(&mut conn)
            .await?;
        if acquired {
            Ok(Some(Leader { conn }))
        } else {
            self.conn = Some(conn);
            Ok(None)
        }
    }
}

/// Why a leader must stop leading.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Deposed {
    /// The check on the lock's connection failed: most often the connection is gone, and with
    /// it the lock (another process may lead now); the leader steps down and tries again.
    #[error("could not check the lock's connection")]
    CheckFailed(#[source] sqlx::Error),
    /// A newer release migrated the database: its processes lead from now on.
    #[error(transparent)]
    Superseded(#[from] Superseded),
}

impl Leader {
    /// Fails when this process may no longer lead: the lock's connection is gone, or a newer
    /// release has migrated the database (one query on the lock's connection, which also
    /// proves it alive).
    pub(crate) async fn check(&mut self) -> Result<(), Deposed> {
        let newest = crate::db::newest_migration(&mut self.conn)
            .await
            .map_err(Deposed::CheckFailed)?;
        Superseded::check(newest)?;
        Ok(())
    }

    /// Gives the lock up now (closing its connection releases it).
    pub(crate) async fn release(self) {
        let _ = self.conn.close().await;
    }
}

/// Resolves once `stop` is true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Sleeps for `duration`; true when stopped meanwhile.
pub(crate) async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        () = stopped(stop) => true,
        () = tokio::time::sleep(duration) => *stop.borrow(),
    }
}
