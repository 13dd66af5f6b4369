//! Aftercare: the staff follow-up list and the outcomes report.

use clinic_domain::values::FollowUpOutcome;
use sqlx::{PgPool, Row};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::members::{follow_up, FollowUp};
use super::page::parse_after;
use super::{stored_opt, Page, PageRequest, ReadModelError};
use crate::clinic::ClinicId;

/// How many follow-ups at one day offset found one outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutcomeCount {
    /// The outcome.
    pub outcome: FollowUpOutcome,
    /// Follow-ups that found it.
    pub count: i64,
}

/// The outcomes recorded at one day offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeRow {
    /// Days after discharge.
    pub day_offset: i32,
    /// Follow-ups at this offset with an outcome recorded.
    pub recorded: i64,
    /// Every outcome, zeros included, in the domain's order.
    pub outcomes: Vec<OutcomeCount>,
}

/// The outcomes report: one row per day offset that has follow-ups, in day order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeReport {
    /// The rows.
    pub rows: Vec<OutcomeRow>,
}

/// The staff follow-up list: open follow-ups (no outcome yet) due within `within_days` of
/// `now` (0: already due), by due time.
pub async fn follow_ups_due(
    pool: &PgPool,
    clinic: &ClinicId,
    within_days: u32,
    now: OffsetDateTime,
) -> Result<Vec<FollowUp>, ReadModelError> {
    let until = now + Duration::days(i64::from(within_days));
    let rows = sqlx::query(include_str!("sql/follow_ups_due.sql"))
        .bind(clinic.as_str())
        .bind(until)
        .fetch_all(pool)
        .await?;
    rows.iter().map(follow_up).collect()
}

/// A page of the staff follow-up list ([`follow_ups_due`]), by due time then id, with the
/// total that match. One round trip.
pub async fn follow_ups_due_page(
    pool: &PgPool,
    clinic: &ClinicId,
    within_days: u32,
    now: OffsetDateTime,
    page: &PageRequest,
) -> Result<Page<FollowUp>, ReadModelError> {
    let until = now + Duration::days(i64::from(within_days));
    let (after_due, after_id): (OffsetDateTime, Uuid) = parse_after('f', page.after.as_deref())?;
    let limit = page.limit();
    let rows = sqlx::query(include_str!("sql/follow_ups_due_page.sql"))
        .bind(clinic.as_str())
        .bind(until)
        .bind(after_due)
        .bind(after_id)
        .bind(limit + 1)
        .fetch_all(pool)
        .await?;
    Page::from_statement(&rows, limit, 'f', "follow_up_id", |row| {
        let follow_up = follow_up(row)?;
        Ok(((follow_up.due_at, follow_up.id.as_uuid()), follow_up))
    })
}

/// The outcomes report of `clinic`: per day offset, how many follow-ups were recorded and
/// how many found each outcome.
pub async fn outcomes(pool: &PgPool, clinic: &ClinicId) -> Result<OutcomeReport, ReadModelError> {
    let found = sqlx::query(include_str!("sql/outcomes.sql"))
        .bind(clinic.as_str())
        .fetch_all(pool)
        .await?;
    let mut rows: Vec<OutcomeRow> = Vec::new();
    for row in &found {
        let day_offset: i32 = row.try_get("day_offset")?;
        let outcome: Option<FollowUpOutcome> =
            stored_opt(row.try_get("outcome")?, "member_follow_ups", "outcome")?;
        let count: i64 = row.try_get("follow_ups")?;
        if rows.last().is_none_or(|r| r.day_offset != day_offset) {
            rows.push(OutcomeRow {
                day_offset,
                recorded: 0,
                outcomes: FollowUpOutcome::ALL
                    .iter()
                    .map(|&outcome| OutcomeCount { outcome, count: 0 })
                    .collect(),
            });
        }
        let Some(current) = rows.last_mut() else {
            continue;
        };
        if let Some(outcome) = outcome {
            current.recorded += count;
            if let Some(c) = current.outcomes.iter_mut().find(|c| c.outcome == outcome) {
                c.count += count;
            }
        }
    }
    Ok(OutcomeReport { rows })
}
