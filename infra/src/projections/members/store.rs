//! Loading the member rows a page touches and writing back what the fold changed: one
//! statement per table each way, whatever the page's size.

use clinic_domain::{CheckInId, FollowUpId, MemberId};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::fold::{CheckInRow, FollowUpRow, MemberKeys, MemberRow, MemberRows};
use crate::projections::{parse_stored, ProjectionError};

fn split<Id: Copy + Into<Uuid>>(
    keys: impl Iterator<Item = (String, Id)>,
) -> (Vec<String>, Vec<Uuid>) {
    keys.map(|(clinic, id)| (clinic, id.into())).unzip()
}

/// Loads every row `keys` names; keys without a row are recorded as absent.
pub(super) async fn load(
    conn: &mut PgConnection,
    keys: &MemberKeys,
) -> Result<MemberRows, ProjectionError> {
    let mut rows = MemberRows::default();
    for key in &keys.members {
        rows.members.loaded(key.clone(), None);
    }
    let (clinics, ids) = split(keys.members.iter().cloned());
    let found = sqlx::query(include_str!("sql/load_members.sql"))
        .bind(&clinics)
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
    for row in &found {
        let key = (
            row.try_get("clinic")?,
            MemberId::new(row.try_get("member_id")?),
        );
        rows.members.loaded(key, Some(member_row(row)?));
    }

    if !keys.check_ins.is_empty() || !keys.check_ins_of.is_empty() {
        for key in &keys.check_ins {
            rows.check_ins.loaded(key.clone(), None);
        }
        let (clinics, ids) = split(keys.check_ins.iter().cloned());
        let (member_clinics, members) = split(keys.check_ins_of.iter().cloned());
        let found = sqlx::query(include_str!("sql/load_check_ins.sql"))
            .bind(&clinics)
            .bind(&ids)
            .bind(&member_clinics)
            .bind(&members)
            .fetch_all(&mut *conn)
            .await?;
        for row in &found {
            let key = (
                row.try_get("clinic")?,
                CheckInId::new(row.try_get("check_in_id")?),
            );
            rows.check_ins.loaded(key, Some(check_in_row(row)?));
        }
    }

    if !keys.follow_ups.is_empty() || !keys.follow_ups_of.is_empty() {
        for key in &keys.follow_ups {
            rows.follow_ups.loaded(key.clone(), None);
        }
        let (clinics, ids) = split(keys.follow_ups.iter().cloned());
        let (member_clinics, members) = split(keys.follow_ups_of.iter().cloned());
        let found = sqlx::query(include_str!("sql/load_follow_ups.sql"))
            .bind(&clinics)
            .bind(&ids)
            .bind(&member_clinics)
            .bind(&members)
            .fetch_all(&mut *conn)
            .await?;
        for row in &found {
            let key = (
                row.try_get("clinic")?,
                FollowUpId::new(row.try_get("follow_up_id")?),
            );
            rows.follow_ups.loaded(key, Some(follow_up_row(row)?));
        }
    }
    Ok(rows)
}

fn member_row(row: &PgRow) -> Result<MemberRow, ProjectionError> {
    const T: &str = "member_summaries";
    let level: Option<String> = row.try_get("level_of_care")?;
    Ok(MemberRow {
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        stage: parse_stored(row.try_get("stage")?, T, "stage")?,
        level_of_care: level
            .map(|l| parse_stored(&l, T, "level_of_care"))
            .transpose()?,
        primary_counselor: row.try_get("primary_counselor")?,
        version: row.try_get("version")?,
        consecutive_missed_check_ins: row.try_get("consecutive_missed_check_ins")?,
        last_missed_due_at: row.try_get("last_missed_due_at")?,
        erased: row.try_get("erased")?,
        referred_at: row.try_get("referred_at")?,
        referred_position: row.try_get("referred_position")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn check_in_row(row: &PgRow) -> Result<CheckInRow, ProjectionError> {
    const T: &str = "member_check_ins";
    Ok(CheckInRow {
        member_id: MemberId::new(row.try_get("member_id")?),
        due_at: row.try_get("due_at")?,
        channel: parse_stored(row.try_get("channel")?, T, "channel")?,
        status: parse_stored(row.try_get("status")?, T, "status")?,
        completed_at: row.try_get("completed_at")?,
        closed_by_discharge: row.try_get("closed_by_discharge")?,
    })
}

fn follow_up_row(row: &PgRow) -> Result<FollowUpRow, ProjectionError> {
    const T: &str = "member_follow_ups";
    let outcome: Option<String> = row.try_get("outcome")?;
    Ok(FollowUpRow {
        member_id: MemberId::new(row.try_get("member_id")?),
        day_offset: row.try_get("day_offset")?,
        due_at: row.try_get("due_at")?,
        status: parse_stored(row.try_get("status")?, T, "status")?,
        outcome: outcome
            .map(|o| parse_stored(&o, T, "outcome"))
            .transpose()?,
        completed_at: row.try_get("completed_at")?,
    })
}

/// Writes every changed row back, and the pipeline counter deltas.
pub(super) async fn write(
    conn: &mut PgConnection,
    rows: &MemberRows,
) -> Result<(), ProjectionError> {
    write_members(conn, rows).await?;
    write_check_ins(conn, rows).await?;
    write_follow_ups(conn, rows).await?;
    write_pipeline(conn, rows).await
}

async fn write_members(conn: &mut PgConnection, rows: &MemberRows) -> Result<(), ProjectionError> {
    let mut c = MemberColumns::default();
    for ((clinic, id), row) in rows.members.upserts() {
        c.clinic.push(clinic.as_str());
        c.member_id.push(id.as_uuid());
        c.name.push(row.name.as_str());
        c.email.push(row.email.as_deref());
        c.stage.push(row.stage.as_str());
        c.level_of_care.push(row.level_of_care.map(|l| l.as_str()));
        c.primary_counselor.push(row.primary_counselor.as_deref());
        c.version.push(row.version);
        c.missed.push(row.consecutive_missed_check_ins);
        c.last_missed_due_at.push(row.last_missed_due_at);
        c.erased.push(row.erased);
        c.referred_at.push(row.referred_at);
        c.referred_position.push(row.referred_position);
        c.updated_at.push(row.updated_at);
    }
    if c.clinic.is_empty() {
        return Ok(());
    }
    sqlx::query(include_str!("sql/upsert_members.sql"))
        .bind(&c.clinic)
        .bind(&c.member_id)
        .bind(&c.name)
        .bind(&c.email)
        .bind(&c.stage)
        .bind(&c.level_of_care)
        .bind(&c.primary_counselor)
        .bind(&c.version)
        .bind(&c.missed)
        .bind(&c.last_missed_due_at)
        .bind(&c.erased)
        .bind(&c.referred_at)
        .bind(&c.referred_position)
        .bind(&c.updated_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[derive(Default)]
struct MemberColumns<'a> {
    clinic: Vec<&'a str>,
    member_id: Vec<Uuid>,
    name: Vec<&'a str>,
    email: Vec<Option<&'a str>>,
    stage: Vec<&'static str>,
    level_of_care: Vec<Option<&'static str>>,
    primary_counselor: Vec<Option<&'a str>>,
    version: Vec<i64>,
    missed: Vec<i32>,
    last_missed_due_at: Vec<Option<OffsetDateTime>>,
    erased: Vec<bool>,
    referred_at: Vec<OffsetDateTime>,
    referred_position: Vec<i64>,
    updated_at: Vec<OffsetDateTime>,
}

async fn write_check_ins(
    conn: &mut PgConnection,
    rows: &MemberRows,
) -> Result<(), ProjectionError> {
    let (mut clinic, mut id, mut member) = (Vec::new(), Vec::new(), Vec::new());
    let (mut due_at, mut channel, mut status, mut completed_at, mut closed) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((c, check_in), row) in rows.check_ins.upserts() {
        clinic.push(c.as_str());
        id.push(check_in.as_uuid());
        member.push(row.member_id.as_uuid());
        due_at.push(row.due_at);
        channel.push(row.channel.as_str());
        status.push(row.status.as_str());
        completed_at.push(row.completed_at);
        closed.push(row.closed_by_discharge);
    }
    if clinic.is_empty() {
        return Ok(());
    }
    sqlx::query(include_str!("sql/upsert_check_ins.sql"))
        .bind(&clinic)
        .bind(&id)
        .bind(&member)
        .bind(&due_at)
        .bind(&channel)
        .bind(&status)
        .bind(&completed_at)
        .bind(&closed)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn write_follow_ups(
    conn: &mut PgConnection,
    rows: &MemberRows,
) -> Result<(), ProjectionError> {
    let (mut clinic, mut id, mut member, mut day_offset) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut due_at, mut status, mut outcome, mut completed_at) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((c, follow_up), row) in rows.follow_ups.upserts() {
        clinic.push(c.as_str());
        id.push(follow_up.as_uuid());
        member.push(row.member_id.as_uuid());
        day_offset.push(row.day_offset);
        due_at.push(row.due_at);
        status.push(row.status.as_str());
        outcome.push(row.outcome.map(|o| o.as_str()));
        completed_at.push(row.completed_at);
    }
    if !clinic.is_empty() {
        sqlx::query(include_str!("sql/upsert_follow_ups.sql"))
            .bind(&clinic)
            .bind(&id)
            .bind(&member)
            .bind(&day_offset)
            .bind(&due_at)
            .bind(&status)
            .bind(&outcome)
            .bind(&completed_at)
            .execute(&mut *conn)
            .await?;
    }
    let (clinics, ids): (Vec<&str>, Vec<Uuid>) = rows
        .follow_ups
        .deletes()
        .map(|(c, id)| (c.as_str(), id.as_uuid()))
        .unzip();
    if !clinics.is_empty() {
        sqlx::query(include_str!("sql/delete_follow_ups.sql"))
            .bind(&clinics)
            .bind(&ids)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn write_pipeline(conn: &mut PgConnection, rows: &MemberRows) -> Result<(), ProjectionError> {
    let (mut clinic, mut stage, mut level, mut delta) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((c, s, l), d) in rows.pipeline.iter().filter(|(_, d)| **d != 0) {
        clinic.push(c.as_str());
        stage.push(s.as_str());
        level.push(l.map_or("", |l| l.as_str()));
        delta.push(*d);
    }
    if clinic.is_empty() {
        return Ok(());
    }
    sqlx::query(include_str!("sql/add_pipeline_counts.sql"))
        .bind(&clinic)
        .bind(&stage)
        .bind(&level)
        .bind(&delta)
        .execute(&mut *conn)
        .await?;
    sqlx::query(include_str!("sql/drop_empty_pipeline_counts.sql"))
        .bind(&clinic)
        .bind(&stage)
        .bind(&level)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
