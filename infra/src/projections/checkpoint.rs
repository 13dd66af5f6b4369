//! The projection's place in the log (`projection_checkpoints`), moved in the same transaction
//! as the read-model writes it covers.

use sqlx::{PgConnection, PgPool};

use super::{ProjectionError, ProjectionName};
use crate::db::Superseded;
use crate::event_store::LogCursor;

/// Creates the checkpoint row at the start of the log if it is missing.
pub(crate) async fn ensure(
    pool: &PgPool,
    projection: ProjectionName,
) -> Result<(), ProjectionError> {
    sqlx::query(include_str!("sql/ensure_checkpoint.sql"))
        .bind(projection.as_str())
        .execute(pool)
        .await?;
    Ok(())
}

/// The checkpoint as committed.
pub(crate) async fn read(
    pool: &PgPool,
    projection: ProjectionName,
) -> Result<LogCursor, ProjectionError> {
    let (transaction_id, position): (i64, i64) =
        sqlx::query_as(include_str!("sql/read_checkpoint.sql"))
            .bind(projection.as_str())
            .fetch_one(pool)
            .await?;
    Ok(LogCursor {
        transaction_id,
        position,
    })
}

/// The checkpoint, locked until the caller's transaction ends (the projection's write lock).
pub(crate) async fn lock(
    conn: &mut PgConnection,
    projection: ProjectionName,
) -> Result<LogCursor, ProjectionError> {
    let (transaction_id, position): (i64, i64) =
        sqlx::query_as(include_str!("sql/lock_checkpoint.sql"))
            .bind(projection.as_str())
            .fetch_one(conn)
            .await?;
    Ok(LogCursor {
        transaction_id,
        position,
    })
}

/// Moves the checkpoint (inside the transaction that applied the events up to `cursor`).
///
/// Fails with [`ProjectionError::Superseded`] when a newer release has migrated the database:
/// the caller's transaction must not commit, since this build's folds wrote it.
pub(crate) async fn store(
    conn: &mut PgConnection,
    projection: ProjectionName,
    cursor: LogCursor,
) -> Result<(), ProjectionError> {
    let newest_migration: Option<i64> =
        sqlx::query_scalar(include_str!("sql/store_checkpoint.sql"))
            .bind(projection.as_str())
            .bind(cursor.transaction_id)
            .bind(cursor.position)
            .fetch_one(conn)
            .await?;
    Superseded::check(newest_migration)?;
    Ok(())
}
