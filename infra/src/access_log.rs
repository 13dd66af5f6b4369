//! The read access log: every read of a member's record by a person, allowed or refused,
//! appended to `access_log` (append-only in the database, like `events`).

mod writer;

pub use writer::{AccessLogWriter, MERGE_EVERY};

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::clinic::ClinicId;

/// Whose records an entry logs reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accessed {
    /// One member's record (a record read, an export, a refusal).
    Member(Uuid),
    /// The members a list query returned, in the order shown: one row for the whole list.
    List(Vec<Uuid>),
}

/// One read (or refused attempt) of a member's record, or of a list of members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    /// The reader's `sub`.
    pub actor: String,
    /// The reader's role.
    pub role: String,
    /// Whose records.
    pub accessed: Accessed,
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

/// One member's entry as stored (a list row gives one per member).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccessRecord {
    /// Its row's place in the log.
    pub id: i64,
    /// The member's place in the row's list (1 for a single-member row); with `id`, the cursor.
    pub ordinal: i32,
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

/// Appends entries in one round trip, whatever their number. The API logs through
/// [`AccessLogWriter`], which gathers concurrent requests.
pub async fn record(
    pool: &PgPool,
    clinic: &ClinicId,
    entries: &[AccessEntry],
) -> Result<(), sqlx::Error> {
    insert(pool, &[(clinic, entries)]).await
}

/// One INSERT (one commit) for the entries of several requests, of any clinics.
async fn insert(
    pool: &PgPool,
    requests: &[(&ClinicId, &[AccessEntry])],
) -> Result<(), sqlx::Error> {
    let rows = || {
        requests
            .iter()
            .flat_map(|(c, e)| e.iter().map(move |e| (*c, e)))
    };
    if rows().next().is_none() {
        return Ok(());
    }
    // Columns borrow from the entries: a list query logs every member it returned, and
    // copying each entry's strings again cost an allocation per field and row.
    let text = |f: fn(&AccessEntry) -> &str| rows().map(|(_, e)| f(e)).collect::<Vec<&str>>();
    let clinics: Vec<&str> = rows().map(|(c, _)| c.as_str()).collect();
    // A single member goes in `member_id`; lists go flat, each row naming its slice (1-based
    // start, length).
    let mut members: Vec<Option<Uuid>> = Vec::new();
    let mut listed: Vec<Uuid> = Vec::new();
    let mut list_starts: Vec<Option<i32>> = Vec::new();
    let mut list_lengths: Vec<Option<i32>> = Vec::new();
    for (_, entry) in rows() {
        let (member, start, length) = match &entry.accessed {
            Accessed::Member(member) => (Some(*member), None, None),
            Accessed::List(list) => {
                let start = listed.len() as i32 + 1;
                listed.extend(list);
                (None, Some(start), Some(list.len() as i32))
            }
        };
        members.push(member);
        list_starts.push(start);
        list_lengths.push(length);
    }
    let allowed: Vec<bool> = rows().map(|(_, e)| e.allowed).collect();
    let correlation: Vec<Uuid> = rows().map(|(_, e)| e.correlation_id).collect();
    let categories: Vec<Option<&str>> = rows().map(|(_, e)| e.category).collect();
    let reasons: Vec<Option<&str>> = rows()
        .map(|(_, e)| e.break_glass_reason.as_deref())
        .collect();
    sqlx::query(include_str!("access_log/record.sql"))
        .bind(clinics)
        .bind(text(|e| &e.actor))
        .bind(text(|e| &e.role))
        .bind(members)
        .bind(text(|e| e.action))
        .bind(categories)
        .bind(allowed)
        .bind(text(|e| &e.operation))
        .bind(correlation)
        .bind(reasons)
        .bind(listed)
        .bind(list_starts)
        .bind(list_lengths)
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
    /// Entries before this one (the cursor: `id` and `ordinal`; newest first).
    pub before: Option<(i64, i32)>,
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
        .bind(query.before.map(|(id, _)| id))
        .bind(query.before.map(|(_, ordinal)| i64::from(ordinal)))
        .bind(query.limit)
        .fetch_all(pool)
        .await
}
