//! Reaching the database: create it if missing, connect, migrate, say whether it is ready, and
//! notice when a newer release has migrated it past this build.

use std::time::Duration;

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres};

use crate::MIGRATOR;

/// What can go wrong while bringing the database up; each names the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The server could not create the database named in `DATABASE_URL`.
    #[error("could not create the database")]
    Create(#[source] sqlx::Error),
    /// The server was unreachable or refused the connection.
    #[error("could not connect to the database")]
    Connect(#[source] sqlx::Error),
    /// A migration failed; the database is left at the last applied one.
    #[error("could not run the migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The database lacks migrations this build needs, and the command does not migrate.
    #[error(
        "the database lacks {missing} of this build's {expected} migrations: run `clinic \
         migrate` (or start `clinic serve`) on it first, if it is the database you meant"
    )]
    NotMigrated {
        /// This build's migrations not applied.
        missing: usize,
        /// This build's migrations.
        expected: usize,
    },
    /// A newer release has migrated the database: its binary must run the command.
    #[error("{0}: run this command with that release's binary")]
    Superseded(#[from] Superseded),
    /// The database holds a migration this build has not (another branch's), or one whose
    /// text differs from this build's: not a schema this build was written for.
    #[error("the database's migration {version} is not this build's ({why}): run this command with the binary of the release that migrated it")]
    ForeignMigration {
        /// The migration.
        version: i64,
        /// Unknown, or changed.
        why: &'static str,
    },
    /// The migrations could not be read (the role may not read `_sqlx_migrations`, say).
    #[error("could not read the database's migrations")]
    ReadMigrations(#[source] sqlx::Error),
}

/// Creates the database if it does not exist (a fresh machine needs no manual step), connects,
/// and applies every pending migration. Safe to run from several processes at once: sqlx
/// serialises migrations with an advisory lock, and a concurrent `CREATE DATABASE` is tolerated.
///
/// The database itself is tried first, and the server's `postgres` database (whence sqlx
/// creates one) only when PostgreSQL says it does not exist: a role allowed to reach its own
/// database alone starts as well, and so does a name PostgreSQL shortens to 63 bytes (looked up
/// by its full name, it was never found, and every start after the first failed creating it).
pub async fn connect_and_migrate(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    let pool = match connect(url, max_connections).await {
        Ok(pool) => pool,
        Err(DbError::Connect(error)) if is_sqlstate(&error, MISSING_DATABASE) => {
            match Postgres::create_database(url).await {
                Ok(()) => tracing::info!("created the database"),
                // Another process created it between the two.
                Err(error) if is_sqlstate(&error, DATABASE_EXISTS) => {}
                Err(error) => return Err(DbError::Create(error)),
            }
            connect(url, max_connections).await?
        }
        Err(error) => return Err(error),
    };
    MIGRATOR.run(&pool).await.map_err(DbError::Migrate)?;
    Ok(pool)
}

/// SQLSTATE `invalid_catalog_name`: the database named does not exist.
const MISSING_DATABASE: &str = "3D000";

/// SQLSTATE `duplicate_database`.
const DATABASE_EXISTS: &str = "42P04";

/// Whether `error` is the database's answer with SQLSTATE `code`.
fn is_sqlstate(error: &sqlx::Error, code: &str) -> bool {
    error
        .as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|got| got == code)
}

/// A pooled connection idle for less than this is handed out without a ping first.
///
/// sqlx pings every connection when it goes back to the pool, and by default again when it
/// is taken out: two extra round trips around every query, a third of a cheap query's cost.
/// A connection returned moments ago was checked then; one idle for longer is pinged before
/// use, so one dropped while idle (a restarted server, a closed idle session) is still
/// replaced instead of failing a request.
pub const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// Connects without migrating (the CLI's read-only commands, tests with a prepared database).
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IF_IDLE_FOR {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect(url)
        .await
        .map_err(DbError::Connect)
}

/// Connects to a database that already holds exactly this build's migrations, neither creating
/// nor migrating it: for operator commands (erase, rotation, the accounting, rebuilds), run
/// beside a service of some release. Migrating as a side effect would move a running service's
/// database to this binary's schema (its projections and scheduler then stop for good), and a
/// mistyped `DATABASE_URL` would get a new, empty database in which nothing is found.
pub async fn connect_migrated(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    let pool = connect(url, max_connections).await?;
    let applied: Vec<(i64, Vec<u8>)> =
        match sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success")
            .fetch_all(&pool)
            .await
        {
            Ok(applied) => applied,
            // No migration table: a database nothing has migrated.
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P01") => Vec::new(),
            Err(error) => return Err(DbError::ReadMigrations(error)),
        };
    Superseded::check(applied.iter().map(|(version, _)| *version).max())?;
    // What `MIGRATOR.run` would refuse, checked without running it.
    for (version, checksum) in &applied {
        match MIGRATOR.iter().find(|m| m.version == *version) {
            None => {
                return Err(DbError::ForeignMigration {
                    version: *version,
                    why: "unknown to it",
                })
            }
            Some(ours) if *ours.checksum != checksum[..] => {
                return Err(DbError::ForeignMigration {
                    version: *version,
                    why: "its text differs",
                })
            }
            Some(_) => {}
        }
    }
    let expected = MIGRATOR.iter().count();
    let missing = MIGRATOR
        .iter()
        .filter(|migration| {
            applied
                .iter()
                .all(|(version, _)| *version != migration.version)
        })
        .count();
    if missing > 0 {
        return Err(DbError::NotMigrated { missing, expected });
    }
    Ok(pool)
}

/// The newest migration this build embeds: the schema its folds and rules were written for.
pub fn newest_embedded_migration() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The database holds a migration newer than this build's: a newer release has migrated it
/// while this process ran (a process of an older release cannot start on it: sqlx refuses a
/// database with an applied migration it does not know). Such a migration may refold a read
/// model with corrected rules, so this process must stop writing derived state (read models,
/// scheduled events) and leave it to the newer release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the database is at migration {database}, newer than this build's {build}: \
     a newer release runs it now"
)]
pub struct Superseded {
    /// The newest migration applied to the database.
    pub database: i64,
    /// The newest migration this build embeds.
    pub build: i64,
}

impl Superseded {
    /// Fails when `database` (the newest applied migration, as [`newest_migration`] reads it) is
    /// newer than this build's.
    pub(crate) fn check(database: Option<i64>) -> Result<(), Self> {
        let build = newest_embedded_migration();
        match database {
            Some(database) if database > build => Err(Self { database, build }),
            _ => Ok(()),
        }
    }
}

/// The newest migration applied to the database (`None` before the first).
pub(crate) async fn newest_migration(
    conn: &mut sqlx::PgConnection,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(include_str!("db/newest_migration.sql"))
        .fetch_one(conn)
        .await
}

/// Whether the database answers and every migration this binary knows is applied (`/readyz`).
pub async fn is_ready(pool: &PgPool) -> bool {
    let applied: Result<i64, _> =
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await;
    matches!(applied, Ok(n) if n as usize >= MIGRATOR.iter().count())
}

/// One failure for each of `waiters` callers whose work shared a statement (group commits):
/// the first gets the error itself, the others a copy (sqlx's errors are not `Clone`) that
/// keeps its kind where sqlx has one to keep, and its message otherwise.
pub(crate) fn failure_for_each(error: sqlx::Error, waiters: usize) -> Vec<sqlx::Error> {
    let copies: Vec<sqlx::Error> = (1..waiters).map(|_| copy_of(&error)).collect();
    std::iter::once(error).chain(copies).take(waiters).collect()
}

fn copy_of(error: &sqlx::Error) -> sqlx::Error {
    match error {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::WorkerCrashed => sqlx::Error::WorkerCrashed,
        sqlx::Error::Io(io) => sqlx::Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        other => sqlx::Error::Io(std::io::Error::other(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_migration_newer_than_the_build_supersedes_it() {
        let build = newest_embedded_migration();
        assert!(
            build >= 20_261_126_000_013,
            "the build embeds every migration"
        );
        assert_eq!(Superseded::check(None), Ok(()));
        assert_eq!(Superseded::check(Some(build - 1)), Ok(()));
        assert_eq!(Superseded::check(Some(build)), Ok(()));
        assert_eq!(
            Superseded::check(Some(build + 1)),
            Err(Superseded {
                database: build + 1,
                build
            })
        );
    }

    #[test]
    fn every_waiter_gets_the_failure() {
        let failures = failure_for_each(sqlx::Error::PoolTimedOut, 3);
        assert_eq!(failures.len(), 3);
        assert!(failures
            .iter()
            .all(|f| matches!(f, sqlx::Error::PoolTimedOut)));
        let io = sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        ));
        let failures = failure_for_each(io, 2);
        assert!(failures.iter().all(|f| matches!(f, sqlx::Error::Io(e)
            if e.kind() == std::io::ErrorKind::ConnectionReset && e.to_string() == "reset")));
        assert!(failure_for_each(sqlx::Error::RowNotFound, 0).is_empty());
    }
}
