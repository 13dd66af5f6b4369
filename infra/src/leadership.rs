//! One active instance across processes: a PostgreSQL session-level advisory lock held on a
//! connection of its own. The lock ends with the connection, so when the leading process dies
//! (or its connection does) another process's next attempt takes over. When the leader's whole
//! host goes (power, network), nothing closes the socket: the server finds the connection dead
//! by TCP keepalive ([`KEEPALIVES`], about half a minute instead of the kernel's two hours) and
//! ends the session, and the lock with it.
//!
//! Also the stop signal of background loops: a `watch` channel that turns `true` on shutdown.

use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;

use crate::db::Superseded;

/// The advisory-lock key space of this service (the first of the two-int keys), so its locks
/// never collide with the event store's per-stream `pg_advisory_xact_lock(bigint)` locks.
pub(crate) const LOCK_SPACE: i32 = 0x636c_696e; // "clin"

/// Server-side TCP settings of a lock's connection: PostgreSQL probes an idle connection after
/// 10 s, every 5 s, and drops it after 3 unanswered probes (or data unacknowledged for 30 s).
/// Ignored on a Unix socket, where a dead peer is seen at once.
const KEEPALIVES: [(&str, &str); 4] = [
    ("tcp_keepalives_idle", "10"),
    ("tcp_keepalives_interval", "5"),
    ("tcp_keepalives_count", "3"),
    ("tcp_user_timeout", "30000"),
];

/// How long a leader's check may take before the leader assumes its connection, and so its
/// lock, is gone (a network cut leaves the query waiting for ever otherwise).
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

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
            None => {
                let options = (*pool.connect_options()).clone().options(KEEPALIVES);
                PgConnection::connect_with(&options).await?
            }
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
        let newest =
            tokio::time::timeout(CHECK_TIMEOUT, crate::db::newest_migration(&mut self.conn))
                .await
                .unwrap_or_else(|_| {
                    Err(sqlx::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the lock's connection did not answer",
                    )))
                })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn a_lock_connection_asks_the_server_to_probe_it(pool: PgPool) {
        let mut leader = Candidate::new("test")
            .try_lead(&pool)
            .await
            .unwrap()
            .expect("nobody else leads");
        // The settings that make the server drop a dead host's connection (and so its locks)
        // within about 30 s. They read 0 over a Unix socket, where no host can vanish: the
        // tests run over TCP (the checkout's `.env`), so that would be a setup to fix, not a pass.
        let tcp: bool = sqlx::query_scalar("SELECT inet_server_addr() IS NOT NULL")
            .fetch_one(&mut leader.conn)
            .await
            .unwrap();
        assert!(
            tcp,
            "this test needs DATABASE_URL over TCP, not a Unix socket"
        );
        let settings: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, setting FROM pg_settings \
             WHERE name LIKE 'tcp_keepalives_%' OR name = 'tcp_user_timeout' ORDER BY name",
        )
        .fetch_all(&mut leader.conn)
        .await
        .unwrap();
        let expected: Vec<(String, String)> = [
            ("tcp_keepalives_count", "3"),
            ("tcp_keepalives_idle", "10"),
            ("tcp_keepalives_interval", "5"),
            ("tcp_user_timeout", "30000"),
        ]
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
        assert_eq!(settings, expected);
        leader.check().await.unwrap();
    }
}
