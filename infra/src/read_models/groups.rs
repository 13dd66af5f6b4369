//! Groups: the group list and page, rosters, sessions with attendance, and members who
//! stopped attending.

use clinic_domain::engagement::STOPPED_ATTENDING_AFTER;
use clinic_domain::values::{AttendanceStatus, GroupModel, SessionStatus};
use clinic_domain::{GroupId, MemberId, SessionId};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::page::parse_after;
use super::{stored, Page, PageRequest, ReadModelError};
use crate::clinic::ClinicId;

/// A group as the list and the group page show it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSummary {
    /// The group.
    pub id: GroupId,
    /// Its name.
    pub name: String,
    /// Its therapeutic model.
    pub model: GroupModel,
    /// The facilitating staff member's `sub`.
    pub facilitator: Option<String>,
    /// How many members it holds.
    pub capacity: i32,
    /// The weekly schedule in words.
    pub schedule: Option<String>,
    /// Marked for alumni.
    pub alumni: bool,
    /// Meets online.
    pub online: bool,
    /// Closed: accepts nothing more.
    pub closed: bool,
    /// The group stream's version.
    pub version: i64,
    /// Members on the roster now.
    pub roster_size: i32,
    /// Present or late over all recorded attendance, after corrections (0 before any).
    pub attendance_rate: f64,
    /// When it was formed.
    pub formed_at: OffsetDateTime,
}

/// A member on a group's roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    /// The group.
    pub group_id: GroupId,
    /// The member.
    pub member_id: MemberId,
    /// When they joined.
    pub joined_at: OffsetDateTime,
}

/// One member's attendance at a session, after corrections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttendanceEntry {
    /// The member.
    pub member_id: MemberId,
    /// How they attended.
    pub status: AttendanceStatus,
}

/// A session of a group and its attendance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The group.
    pub group_id: GroupId,
    /// The session.
    pub id: SessionId,
    /// Scheduled, held or cancelled.
    pub status: SessionStatus,
    /// When it was scheduled to start.
    pub starts_at: Option<OffsetDateTime>,
    /// When it was held.
    pub held_at: Option<OffsetDateTime>,
    /// Its topic.
    pub topic: String,
    /// How long it lasted.
    pub duration_minutes: Option<i32>,
    /// Every roster member's attendance (empty until held), by member id.
    pub attendance: Vec<AttendanceEntry>,
}

/// A member flagged to a group's facilitator: absent from its last sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoppedAttending {
    /// The group.
    pub group_id: GroupId,
    /// Its name.
    pub group_name: String,
    /// Its facilitator, who gets the flag.
    pub facilitator: Option<String>,
    /// The member.
    pub member_id: MemberId,
    /// Absences since they last attended.
    pub consecutive_absences: i64,
}

/// A page of `clinic`'s groups in the order formed (only one facilitator's, if given), with
/// the total that match. One round trip.
pub async fn groups_page(
    pool: &PgPool,
    clinic: &ClinicId,
    facilitator: Option<&str>,
    page: &PageRequest,
) -> Result<Page<GroupSummary>, ReadModelError> {
    let after: i64 = parse_after('g', page.after.as_deref())?;
    let limit = page.limit();
    let rows = sqlx::query(include_str!("sql/groups_page.sql"))
        .bind(clinic.as_str())
        .bind(facilitator)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(pool)
        .await?;
    Page::from_statement(&rows, limit, 'g', "group_id", |row| {
        Ok((row.try_get::<i64, _>("formed_position")?, group(row)?))
    })
}

/// The groups with these ids in `clinic` (batch loading). One round trip.
pub async fn groups_by_ids(
    pool: &PgPool,
    clinic: &ClinicId,
    ids: &[GroupId],
) -> Result<Vec<GroupSummary>, ReadModelError> {
    let ids: Vec<Uuid> = ids.iter().map(GroupId::as_uuid).collect();
    let rows = sqlx::query(include_str!("sql/groups_by_ids.sql"))
        .bind(clinic.as_str())
        .bind(&ids)
        .fetch_all(pool)
        .await?;
    rows.iter().map(group).collect()
}

fn group(row: &PgRow) -> Result<GroupSummary, ReadModelError> {
    let attended: i64 = row.try_get("attended_count")?;
    let recorded: i64 = row.try_get("recorded_count")?;
    Ok(GroupSummary {
        id: GroupId::new(row.try_get("group_id")?),
        name: row.try_get("name")?,
        model: stored(row.try_get("model")?, "group_summaries", "model")?,
        facilitator: row.try_get("facilitator")?,
        capacity: row.try_get("capacity")?,
        schedule: row.try_get("schedule")?,
        alumni: row.try_get("alumni")?,
        online: row.try_get("online")?,
        closed: row.try_get("closed")?,
        version: row.try_get("version")?,
        roster_size: row.try_get("roster_size")?,
        attendance_rate: if recorded == 0 {
            0.0
        } else {
            attended as f64 / recorded as f64
        },
        formed_at: row.try_get("formed_at")?,
    })
}

/// The rosters of these groups (batch loading), in the order members joined. One round trip.
pub async fn rosters(
    pool: &PgPool,
    clinic: &ClinicId,
    groups: &[GroupId],
) -> Result<Vec<RosterEntry>, ReadModelError> {
    let ids: Vec<Uuid> = groups.iter().map(GroupId::as_uuid).collect();
    let rows = sqlx::query(include_str!("sql/rosters.sql"))
        .bind(clinic.as_str())
        .bind(&ids)
        .fetch_all(pool)
        .await?;
    rows.iter().map(roster_entry).collect()
}

/// The groups these members are on now (batch loading), in the order they joined. One round
/// trip.
pub async fn groups_of_members(
    pool: &PgPool,
    clinic: &ClinicId,
    members: &[MemberId],
) -> Result<Vec<RosterEntry>, ReadModelError> {
    let ids: Vec<Uuid> = members.iter().map(MemberId::as_uuid).collect();
    let rows = sqlx::query(include_str!("sql/groups_of_members.sql"))
        .bind(clinic.as_str())
        .bind(&ids)
        .fetch_all(pool)
        .await?;
    rows.iter().map(roster_entry).collect()
}

fn roster_entry(row: &PgRow) -> Result<RosterEntry, ReadModelError> {
    Ok(RosterEntry {
        group_id: GroupId::new(row.try_get("group_id")?),
        member_id: MemberId::new(row.try_get("member_id")?),
        joined_at: row.try_get("joined_at")?,
    })
}

/// The sessions of these groups with their attendance after corrections (batch loading), in
/// the order recorded. One round trip.
pub async fn sessions_of_groups(
    pool: &PgPool,
    clinic: &ClinicId,
    groups: &[GroupId],
) -> Result<Vec<Session>, ReadModelError> {
    let ids: Vec<Uuid> = groups.iter().map(GroupId::as_uuid).collect();
    let rows = sqlx::query(include_str!("sql/sessions_of_groups.sql"))
        .bind(clinic.as_str())
        .bind(&ids)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            let members: Vec<Uuid> = row.try_get("attendance_members")?;
            let statuses: Vec<String> = row.try_get("attendance_statuses")?;
            let attendance = members
                .into_iter()
                .zip(&statuses)
                .map(|(member, status)| {
                    Ok(AttendanceEntry {
                        member_id: MemberId::new(member),
                        status: stored(status, "session_attendance", "status")?,
                    })
                })
                .collect::<Result<_, ReadModelError>>()?;
            Ok(Session {
                group_id: GroupId::new(row.try_get("group_id")?),
                id: SessionId::new(row.try_get("session_id")?),
                status: stored(row.try_get("status")?, "group_sessions", "status")?,
                starts_at: row.try_get("starts_at")?,
                held_at: row.try_get("held_at")?,
                topic: row.try_get("topic")?,
                duration_minutes: row.try_get("duration_minutes")?,
                attendance,
            })
        })
        .collect()
}

/// A page of the members on the roster of an open group absent from its last 2 or more
/// sessions (excused ones neither count nor break the run), for one facilitator or all, by
/// group formation then join, with the total that match; computed from the corrected
/// attendance at query time. One round trip.
pub async fn stopped_attending(
    pool: &PgPool,
    clinic: &ClinicId,
    facilitator: Option<&str>,
    page: &PageRequest,
) -> Result<Page<StoppedAttending>, ReadModelError> {
    let (after_formed, after_joined): (i64, i64) = parse_after('s', page.after.as_deref())?;
    let limit = page.limit();
    let rows = sqlx::query(include_str!("sql/stopped_attending.sql"))
        .bind(clinic.as_str())
        .bind(facilitator)
        .bind(i64::from(STOPPED_ATTENDING_AFTER))
        .bind(after_formed)
        .bind(after_joined)
        .bind(limit + 1)
        .fetch_all(pool)
        .await?;
    Page::from_statement(&rows, limit, 's', "member_id", |row| {
        let flag = StoppedAttending {
            group_id: GroupId::new(row.try_get("group_id")?),
            group_name: row.try_get("group_name")?,
            facilitator: row.try_get("facilitator")?,
            member_id: MemberId::new(row.try_get("member_id")?),
            consecutive_absences: row.try_get("absences")?,
        };
        let key: (i64, i64) = (
            row.try_get("formed_position")?,
            row.try_get("joined_position")?,
        );
        Ok((key, flag))
    })
}

/// Whether `member` is on the roster of a group `facilitator` runs (minimum necessary: a
/// facilitator reads only their groups' members).
pub async fn is_on_roster_of_facilitator(
    pool: &PgPool,
    clinic: &ClinicId,
    member: MemberId,
    facilitator: &str,
) -> Result<bool, ReadModelError> {
    Ok(
        sqlx::query_scalar(include_str!("sql/is_on_roster_of_facilitator.sql"))
            .bind(clinic.as_str())
            .bind(member.as_uuid())
            .bind(facilitator)
            .fetch_one(pool)
            .await?,
    )
}
