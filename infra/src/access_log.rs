//! The read access log: every read of a member's record by a person, allowed or refused,
//! appended to `access_log` (append-only in the database, like `events`).

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::clinic::ClinicId;

/// One read (or refused attempt) of one member's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    /// The reader's `sub`.
    pub actor: String,
    /// The reader's role.
    pub role: String,
    /// Whose record.
    pub member_id: Uuid,
    /// `read`, `query` or `export`.
    pub action: &'static str,
    /// Which part of the record (profile, attendance, check_ins, …), when one.
    pub category: Option<&'static str>,
    /// Whether the read was allowed.
    pub allowed: bool,
    /// The GraphQL operation (or CLI command).
    pub operation: String,
    /// The request's correlation id.
    pub correlation_id: Uuid,
    /// The stated reason of a read outside the reader's minimum-necessary scope.
    pub break_glass_reason: Option<String>,
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccessRecord {
    /// Its place in the log (the cursor).
    pub id: i64,
    /// When.
    pub at: OffsetDateTime,
    /// Who.
    pub actor: String,
    /// Their role.
    pub role: String,
    /// Whose record.
    pub member_id: Uuid,
    /// read, query, export.
    pub action: String,
    /// Which part.
    pub category: Option<String>,
    /// Allowed or refused.
    pub allowed: bool,
    /// The operation.
    pub operation: String,
    /// The correlation id.
    pub correlation_id: Uuid,
    /// The break-glass reason, if any.
    pub break_glass_reason: Option<String>,
}

/// Appends entries (one round trip whatever their number: a list query logs every member it
/// returned).
pub async fn record(
    pool: &PgPool,
    clinic: &ClinicId,
    entries: &[AccessEntry],
) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    // Columns borrow from the entries: a list query logs every member it returned, and
    // copying each entry's strings again cost an allocation per field and row.
    let text = |f: fn(&AccessEntry) -> &str| entries.iter().map(f).collect::<Vec<&str>>();
    let members: Vec<Uuid> = entries.iter().map(|e| e.member_id).collect();
    let allowed: Vec<bool> = entries.iter().map(|e| e.allowed).collect();
    let correlation: Vec<Uuid> = entries.iter().map(|e| e.correlation_id).collect();
    let categories: Vec<Option<&str>> = entries.iter().map(|e| e.category).collect();
    let reasons: Vec<Option<&str>> = entries
        .iter()
        .map(|e| e.break_glass_reason.as_deref())
        .collect();
    sqlx::query(include_str!("access_log/record.sql"))
        .bind(clinic.as_str())
        .bind(text(|e| &e.actor))
        .bind(text(|e| &e.role))
        .bind(members)
        .bind(text(|e| e.action))
        .bind(categories)
        .bind(allowed)
        .bind(text(|e| &e.operation))
        .bind(correlation)
        .bind(reasons)
        .execute(pool)
        .await?;
    Ok(())
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct AccessQuery {
    /// Only this member's entries.
    pub member_id: Option<Uuid>,
    /// Only break-glass reads.
    pub break_glass_only: bool,
    /// Entries older than this id (the cursor; newest first).
    pub before_id: Option<i64>,
    /// Page size.
    pub limit: i64,
}

/// A page of the clinic's access log, newest first.
pub async fn list(
    pool: &PgPool,
    clinic: &ClinicId,
    query: &AccessQuery,
) -> Result<Vec<AccessRecord>, sqlx::Error> {
    sqlx::query_as(include_str!("access_log/list.sql"))
        .bind(clinic.as_str())
        .bind(query.member_id)
        .bind(query.break_glass_only)
        .bind(query.before_id)
        .bind(query.limit)
        .fetch_all(pool)
        .await
}
