//! Members: the pipeline board, the member list and page, check-ins, follow-ups, at-risk
//! members and outreach items.

use clinic_domain::engagement::{is_at_risk, OUTREACH_AFTER_MISSED_CHECK_INS};
use clinic_domain::values::{
    CheckInChannel, CheckInStatus, FollowUpOutcome, FollowUpStatus, LevelOfCare, Stage,
};
use clinic_domain::{CheckInId, FollowUpId, GroupId, MemberId};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::page::parse_after;
use super::{stored, stored_opt, Engagement, Page, PageRequest, ReadModelError};
use crate::clinic::ClinicId;

/// How many members are at one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageCount {
    /// The stage.
    pub stage: Stage,
    /// Members at it.
    pub count: i64,
}

/// How many members in treatment are at one level of care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelCount {
    /// The level of care.
    pub level_of_care: LevelOfCare,
    /// Members in treatment at it.
    pub count: i64,
}

/// The pipeline board: every stage and every level of care, zeros included, in the domain's
/// order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineBoard {
    /// Members per stage.
    pub stages: Vec<StageCount>,
    /// Members in treatment per level of care.
    pub in_treatment_by_level: Vec<LevelCount>,
}

/// A member as the list and the member page show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSummary {
    /// The member.
    pub id: MemberId,
    /// Their name (a placeholder once erased).
    pub name: String,
    /// Their email, if given (none once erased).
    pub email: Option<String>,
    /// The pipeline stage.
    pub stage: Stage,
    /// The level of care while in treatment.
    pub level_of_care: Option<LevelOfCare>,
    /// Who receives their outreach items.
    pub primary_counselor: Option<String>,
    /// The member stream's version (the client's `expectedVersion`).
    pub version: i64,
    /// Missed check-ins since the last completed one.
    pub consecutive_missed_check_ins: i32,
    /// When the last missed check-in was due.
    pub last_missed_due_at: Option<OffsetDateTime>,
    /// Whether their personal data was erased.
    pub erased: bool,
    /// When they were referred.
    pub referred_at: OffsetDateTime,
    /// Sessions attended (present or late) in the 7 days up to the query's `now`.
    pub sessions_attended_last_7_days: i64,
    /// In treatment and below the threshold, at the query's `now`.
    pub at_risk: bool,
}

/// Which members a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MemberFilter {
    /// Only members at this stage.
    pub stage: Option<Stage>,
    /// Only members at risk (`true`) or not at risk (`false`) at the query's `now`.
    pub at_risk: Option<bool>,
}

/// A scheduled check-in of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckIn {
    /// Whose.
    pub member_id: MemberId,
    /// The check-in.
    pub id: CheckInId,
    /// When it is due.
    pub due_at: OffsetDateTime,
    /// How it is to be made.
    pub channel: CheckInChannel,
    /// Scheduled, completed or missed.
    pub status: CheckInStatus,
    /// When the member checked in.
    pub completed_at: Option<OffsetDateTime>,
    /// Still scheduled at a discharge: closed with the episode, never marked missed.
    pub closed_by_discharge: bool,
}

/// An alumni follow-up of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// Whose.
    pub member_id: MemberId,
    /// The follow-up.
    pub id: FollowUpId,
    /// Days after discharge.
    pub day_offset: i32,
    /// When it falls due.
    pub due_at: OffsetDateTime,
    /// Planned, due or completed.
    pub status: FollowUpStatus,
    /// What it found, once recorded.
    pub outcome: Option<FollowUpOutcome>,
    /// When the outcome was recorded.
    pub completed_at: Option<OffsetDateTime>,
}

/// An open outreach item: a member who missed check-ins in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutreachItem {
    /// The member.
    pub member_id: MemberId,
    /// Their name.
    pub name: String,
    /// The counselor the item is for.
    pub primary_counselor: Option<String>,
    /// Missed check-ins in a row.
    pub consecutive_missed_check_ins: i32,
    /// When the last missed one was due.
    pub last_missed_due_at: Option<OffsetDateTime>,
}

const SUMMARIES: &str = "member_summaries";

/// The pipeline board of `clinic`: members per stage, and in treatment per level of care.
/// Reads the board's counters (a handful of rows, whatever the clinic's size).
pub async fn pipeline_board(
    pool: &PgPool,
    clinic: &ClinicId,
) -> Result<PipelineBoard, ReadModelError> {
    let rows = sqlx::query(include_str!("sql/pipeline_board.sql"))
        .bind(clinic.as_str())
        .fetch_all(pool)
        .await?;
    let mut stages: Vec<StageCount> = Stage::ALL
        .iter()
        .map(|&stage| StageCount { stage, count: 0 })
        .collect();
    let mut levels: Vec<LevelCount> = LevelOfCare::ALL
        .iter()
        .map(|&level_of_care| LevelCount {
            level_of_care,
            count: 0,
        })
        .collect();
    for row in &rows {
        let stage: Stage = stored(row.try_get("stage")?, "pipeline_counts", "stage")?;
        let level: &str = row.try_get("level_of_care")?;
        let count: i64 = row.try_get("members")?;
        if let Some(s) = stages.iter_mut().find(|s| s.stage == stage) {
            s.count += count;
        }
        if stage == Stage::InTreatment && !level.is_empty() {
            let level: LevelOfCare = stored(level, "pipeline_counts", "level_of_care")?;
            if let Some(l) = levels.iter_mut().find(|l| l.level_of_care == level) {
                l.count += count;
            }
        }
    }
    Ok(PipelineBoard {
        stages,
        in_treatment_by_level: levels,
    })
}

/// A page of `clinic`'s members in referral order, filtered by stage and/or at-risk (measured
/// at `engagement.now`), with the total that match. One round trip.
pub async fn members_page(
    pool: &PgPool,
    clinic: &ClinicId,
    filter: MemberFilter,
    page: &PageRequest,
    engagement: Engagement,
) -> Result<Page<MemberSummary>, ReadModelError> {
    let after: i64 = parse_after('m', page.after.as_deref())?;
    let limit = page.limit();
    let rows = sqlx::query(include_str!("sql/members_page.sql"))
        .bind(clinic.as_str())
        .bind(filter.stage.map(Stage::as_str))
        .bind(filter.at_risk)
        .bind(after)
        .bind(limit + 1)
        .bind(engagement.since())
        .bind(engagement.now)
        .bind(i64::from(engagement.threshold))
        .fetch_all(pool)
        .await?;
    Page::from_statement(&rows, limit, 'm', "member_id", |row| {
        Ok((
            row.try_get::<i64, _>("referred_position")?,
            summary(row, engagement)?,
        ))
    })
}

/// The members with these ids in `clinic` (ids of other clinics are simply not found), for
/// batch loading. One round trip.
pub async fn members_by_ids(
    pool: &PgPool,
    clinic: &ClinicId,
    ids: &[MemberId],
    engagement: Engagement,
) -> Result<Vec<MemberSummary>, ReadModelError> {
    let ids: Vec<Uuid> = ids.iter().map(MemberId::as_uuid).collect();
    let rows = sqlx::query(include_str!("sql/members_by_ids.sql"))
        .bind(clinic.as_str())
        .bind(&ids)
        .bind(engagement.since())
        .bind(engagement.now)
        .fetch_all(pool)
        .await?;
    rows.iter().map(|row| summary(row, engagement)).collect()
}

/// Members in treatment below the attendance threshold at `engagement.now`, in referral order.
pub async fn at_risk_members(
    pool: &PgPool,
    clinic: &ClinicId,
    engagement: Engagement,
) -> Result<Vec<MemberSummary>, ReadModelError> {
    let rows = sqlx::query(include_str!("sql/at_risk_members.sql"))
        .bind(clinic.as_str())
        .bind(engagement.since())
        .bind(engagement.now)
        .bind(i64::from(engagement.threshold))
        .fetch_all(pool)
        .await?;
    rows.iter().map(|row| summary(row, engagement)).collect()
}

fn summary(row: &PgRow, engagement: Engagement) -> Result<MemberSummary, ReadModelError> {
    let stage: Stage = stored(row.try_get("stage")?, SUMMARIES, "stage")?;
    let attended: i64 = row.try_get("attended")?;
    Ok(MemberSummary {
        id: MemberId::new(row.try_get("member_id")?),
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        stage,
        level_of_care: stored_opt(row.try_get("level_of_care")?, SUMMARIES, "level_of_care")?,
        primary_counselor: row.try_get("primary_counselor")?,
        version: row.try_get("version")?,
        consecutive_missed_check_ins: row.try_get("consecutive_missed_check_ins")?,
        last_missed_due_at: row.try_get("last_missed_due_at")?,
        erased: row.try_get("erased")?,
        referred_at: row.try_get("referred_at")?,
        sessions_attended_last_7_days: attended,
        at_risk: is_at_risk(
            stage,
            u32::try_from(attended).unwrap_or(u32::MAX),
            engagement.threshold,
        ),
    })
}

/// The check-ins of these members (batch loading), by member then due time. One round trip.
pub async fn check_ins_of_members(
    pool: &PgPool,
    clinic: &ClinicId,
    members: &[MemberId],
) -> Result<Vec<CheckIn>, ReadModelError> {
    let ids: Vec<Uuid> = members.iter().map(MemberId::as_uuid).collect();
    let rows = sqlx::query(include_str!("sql/check_ins_of_members.sql"))
        .bind(clinic.as_str())
        .bind(&ids)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            const T: &str = "member_check_ins";
            Ok(CheckIn {
                member_id: MemberId::new(row.try_get("member_id")?),
                id: CheckInId::new(row.try_get("check_in_id")?),
                due_at: row.try_get("due_at")?,
                channel: stored(row.try_get("channel")?, T, "channel")?,
                status: stored(row.try_get("status")?, T, "status")?,
                completed_at: row.try_get("completed_at")?,
                closed_by_discharge: row.try_get("closed_by_discharge")?,
            })
        })
        .collect()
}

/// The follow-ups of these members (batch loading), by member then due time. One round trip.
pub async fn follow_ups_of_members(
    pool: &PgPool,
    clinic: &ClinicId,
    members: &[MemberId],
) -> Result<Vec<FollowUp>, ReadModelError> {
    let ids: Vec<Uuid> = members.iter().map(MemberId::as_uuid).collect();
    let rows = sqlx::query(include_str!("sql/follow_ups_of_members.sql"))
        .bind(clinic.as_str())
        .bind(&ids)
        .fetch_all(pool)
        .await?;
    rows.iter().map(follow_up).collect()
}

pub(super) fn follow_up(row: &PgRow) -> Result<FollowUp, ReadModelError> {
    const T: &str = "member_follow_ups";
    Ok(FollowUp {
        member_id: MemberId::new(row.try_get("member_id")?),
        id: FollowUpId::new(row.try_get("follow_up_id")?),
        day_offset: row.try_get("day_offset")?,
        due_at: row.try_get("due_at")?,
        status: stored(row.try_get("status")?, T, "status")?,
        outcome: stored_opt(row.try_get("outcome")?, T, "outcome")?,
        completed_at: row.try_get("completed_at")?,
    })
}

/// A page of open outreach items (2 or more missed check-ins in a row, member not erased), for
/// one primary counselor or all, in referral order, with the total that match. One round trip.
pub async fn outreach_items(
    pool: &PgPool,
    clinic: &ClinicId,
    counselor: Option<&str>,
    page: &PageRequest,
) -> Result<Page<OutreachItem>, ReadModelError> {
    // outreach_items.sql repeats its partial index's `>= 2`, which holds only while the
    // threshold is at least 2.
    const _: () = assert!(OUTREACH_AFTER_MISSED_CHECK_INS >= 2);
    let after: i64 = parse_after('o', page.after.as_deref())?;
    let limit = page.limit();
    let rows = sqlx::query(include_str!("sql/outreach_items.sql"))
        .bind(clinic.as_str())
        .bind(i32::try_from(OUTREACH_AFTER_MISSED_CHECK_INS).unwrap_or(i32::MAX))
        .bind(counselor)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(pool)
        .await?;
    Page::from_statement(&rows, limit, 'o', "member_id", |row| {
        let item = OutreachItem {
            member_id: MemberId::new(row.try_get("member_id")?),
            name: row.try_get("name")?,
            primary_counselor: row.try_get("primary_counselor")?,
            consecutive_missed_check_ins: row.try_get("consecutive_missed_check_ins")?,
            last_missed_due_at: row.try_get("last_missed_due_at")?,
        };
        Ok((row.try_get::<i64, _>("referred_position")?, item))
    })
}

/// The member an alumni follow-up belongs to (follow-up ids are derived, not reversible).
pub async fn member_of_follow_up(
    pool: &PgPool,
    clinic: &ClinicId,
    follow_up: FollowUpId,
) -> Result<Option<MemberId>, ReadModelError> {
    let member: Option<Uuid> = sqlx::query_scalar(include_str!("sql/member_of_follow_up.sql"))
        .bind(clinic.as_str())
        .bind(follow_up.as_uuid())
        .fetch_optional(pool)
        .await?;
    Ok(member.map(MemberId::new))
}

/// The groups where a member has a record of a session held in `(since, until]`: the streams
/// time travel replays, as recorded up to a past instant, to count engagement then.
pub async fn groups_attended_between(
    pool: &PgPool,
    clinic: &ClinicId,
    member: MemberId,
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<Vec<GroupId>, ReadModelError> {
    let ids: Vec<Uuid> = sqlx::query_scalar(include_str!("sql/groups_attended_between.sql"))
        .bind(clinic.as_str())
        .bind(member.as_uuid())
        .bind(since)
        .bind(until)
        .fetch_all(pool)
        .await?;
    Ok(ids.into_iter().map(GroupId::new).collect())
}
