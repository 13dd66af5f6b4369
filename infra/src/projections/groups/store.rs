//! Loading the group rows a page touches and writing back what the fold changed: one
//! statement per table each way, whatever the page's size.

use std::collections::{BTreeMap, BTreeSet};

use clinic_domain::values::SessionStatus;
use clinic_domain::{GroupEvent, GroupId, GroupState, MemberId, SessionId};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::fold::{
    AttendanceRow, GroupKeys, GroupRow, GroupRows, RosterKey, RosterRow, SessionKey, SessionRow,
};
use super::GroupEnvelope;
use crate::event_store::RecordedEvent;
use crate::keyring::KeySet;
use crate::projections::{parse_stored, ProjectionError};

/// A `group_rosters` row as the fold's key and row.
fn roster_row(row: &PgRow) -> Result<(RosterKey, RosterRow), ProjectionError> {
    let key = (
        row.try_get("clinic")?,
        GroupId::new(row.try_get("group_id")?),
        MemberId::new(row.try_get("member_id")?),
    );
    let entry = RosterRow {
        joined_at: row.try_get("joined_at")?,
        joined_position: row.try_get("joined_position")?,
    };
    Ok((key, entry))
}

/// Who was on each group's roster when its schema-v1 sessions in the page were held: the
/// domain's `GroupState::roster_at`, folded from the group's stream up to each such event.
/// Stretches that ended (a member who left, or left and rejoined) count as the domain counts
/// them; the read model's roster holds only today's.
///
/// The streams are read by the ids stored on the page's events (a legacy import may have
/// spelled a uuid otherwise than `GroupId::stream_id` does), and decoded without member keys:
/// the roster needs no personal field, so none is opened. Each page with v1 sessions replays
/// their groups from the start: a log imported with many of them refolds in time that grows
/// with the pages times the streams' length.
async fn rosters_at_v1_sessions(
    conn: &mut PgConnection,
    keys: &GroupKeys,
    page: &[RecordedEvent],
) -> Result<BTreeMap<(String, GroupId, i64), Vec<MemberId>>, ProjectionError> {
    let streams: BTreeMap<(&str, &str), i64> = page
        .iter()
        .filter_map(|recorded| {
            let group = GroupId::from_stream_id(&recorded.stream_id).ok()?;
            let last = keys.v1_sessions.get(&(recorded.clinic.clone(), group))?;
            Some((
                (recorded.clinic.as_str(), recorded.stream_id.as_str()),
                *last,
            ))
        })
        .collect();
    let recorded = crate::projections::load_streams(
        &mut *conn,
        streams
            .iter()
            .map(|(&(clinic, stream), &last)| (clinic, stream, last)),
    )
    .await?;
    let mut rosters = BTreeMap::new();
    for stream in crate::projections::each_stream(&recorded) {
        let events: Vec<GroupEnvelope> =
            crate::projections::decode_category(&KeySet::default(), stream, |id| {
                GroupId::from_stream_id(id).ok()
            })?;
        let mut state = GroupState::default();
        for e in &events {
            if let GroupEvent::SessionHeld(held) = &e.event {
                if held.recorded_presence_only {
                    rosters.insert(
                        (e.clinic.clone(), e.id, e.version),
                        state.roster_at(held.held_at),
                    );
                }
            }
            state = state.evolve(&e.event);
        }
    }
    Ok(rosters)
}

/// Loads every row `keys` names (keys without a row are recorded as absent), then the earlier
/// attendance of any session the page holds that was already held, and the roster of the day
/// of each v1 session (from the page's stored events, `page`, and their streams).
pub(super) async fn load(
    conn: &mut PgConnection,
    keys: &GroupKeys,
    page: &[RecordedEvent],
    events: &[GroupEnvelope],
) -> Result<GroupRows, ProjectionError> {
    let mut rows = GroupRows::default();

    for key in &keys.groups {
        rows.groups.loaded(key.clone(), None);
    }
    let (clinics, ids): (Vec<&str>, Vec<Uuid>) = keys
        .groups
        .iter()
        .map(|(c, g)| (c.as_str(), g.as_uuid()))
        .unzip();
    for row in &sqlx::query(include_str!("sql/load_groups.sql"))
        .bind(&clinics)
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?
    {
        let key = (
            row.try_get("clinic")?,
            GroupId::new(row.try_get("group_id")?),
        );
        rows.groups.loaded(key, Some(group_row(row)?));
    }

    if !keys.roster.is_empty() {
        for key in &keys.roster {
            rows.roster.loaded(key.clone(), None);
        }
        let (mut clinics, mut groups, mut members) = (Vec::new(), Vec::new(), Vec::new());
        for (c, g, m) in &keys.roster {
            clinics.push(c.as_str());
            groups.push(g.as_uuid());
            members.push(m.as_uuid());
        }
        for row in &sqlx::query(include_str!("sql/load_roster.sql"))
            .bind(&clinics)
            .bind(&groups)
            .bind(&members)
            .fetch_all(&mut *conn)
            .await?
        {
            let (key, entry) = roster_row(row)?;
            rows.roster.loaded(key, Some(entry));
        }
    }

    if !keys.v1_sessions.is_empty() {
        rows.rosters_at_v1_sessions = rosters_at_v1_sessions(conn, keys, page).await?;
    }

    let mut held_before: BTreeSet<SessionKey> = BTreeSet::new();
    if !keys.sessions.is_empty() {
        for key in &keys.sessions {
            rows.sessions.loaded(key.clone(), None);
        }
        let (clinics, ids): (Vec<&str>, Vec<Uuid>) = keys
            .sessions
            .iter()
            .map(|(c, s)| (c.as_str(), s.as_uuid()))
            .unzip();
        for row in &sqlx::query(include_str!("sql/load_sessions.sql"))
            .bind(&clinics)
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?
        {
            let key: SessionKey = (
                row.try_get("clinic")?,
                SessionId::new(row.try_get("session_id")?),
            );
            let session = session_row(row)?;
            if session.status == SessionStatus::Held {
                held_before.insert(key.clone());
            }
            rows.sessions.loaded(key, Some(session));
        }
    }
    // Sessions held again: their earlier attendance is replaced, so all of it is needed.
    let held_again: Vec<&SessionKey> = held_before
        .iter()
        .filter(|key| {
            events.iter().any(|e| {
                matches!(&e.event, GroupEvent::SessionHeld(s)
                    if e.clinic == key.0 && s.session_id == key.1)
            })
        })
        .collect();

    if !keys.attendance.is_empty() || !held_again.is_empty() {
        for key in &keys.attendance {
            rows.attendance.loaded(key.clone(), None);
        }
        let (mut clinics, mut sessions, mut members) = (Vec::new(), Vec::new(), Vec::new());
        for (c, s, m) in &keys.attendance {
            clinics.push(c.as_str());
            sessions.push(s.as_uuid());
            members.push(m.as_uuid());
        }
        let (again_clinics, again_sessions): (Vec<&str>, Vec<Uuid>) = held_again
            .iter()
            .map(|(c, s)| (c.as_str(), s.as_uuid()))
            .unzip();
        for row in &sqlx::query(include_str!("sql/load_attendance.sql"))
            .bind(&clinics)
            .bind(&sessions)
            .bind(&members)
            .bind(&again_clinics)
            .bind(&again_sessions)
            .fetch_all(&mut *conn)
            .await?
        {
            let key = (
                row.try_get("clinic")?,
                SessionId::new(row.try_get("session_id")?),
                MemberId::new(row.try_get("member_id")?),
            );
            let record = AttendanceRow {
                group_id: GroupId::new(row.try_get("group_id")?),
                held_at: row.try_get("held_at")?,
                status: parse_stored(row.try_get("status")?, "session_attendance", "status")?,
            };
            rows.attendance.loaded(key, Some(record));
        }
    }
    Ok(rows)
}

fn group_row(row: &PgRow) -> Result<GroupRow, ProjectionError> {
    Ok(GroupRow {
        name: row.try_get("name")?,
        model: parse_stored(row.try_get("model")?, "group_summaries", "model")?,
        facilitator: row.try_get("facilitator")?,
        capacity: row.try_get("capacity")?,
        schedule: row.try_get("schedule")?,
        alumni: row.try_get("alumni")?,
        online: row.try_get("online")?,
        closed: row.try_get("closed")?,
        version: row.try_get("version")?,
        roster_size: row.try_get("roster_size")?,
        attended_count: row.try_get("attended_count")?,
        recorded_count: row.try_get("recorded_count")?,
        formed_at: row.try_get("formed_at")?,
        formed_position: row.try_get("formed_position")?,
    })
}

fn session_row(row: &PgRow) -> Result<SessionRow, ProjectionError> {
    Ok(SessionRow {
        group_id: GroupId::new(row.try_get("group_id")?),
        status: parse_stored(row.try_get("status")?, "group_sessions", "status")?,
        starts_at: row.try_get("starts_at")?,
        held_at: row.try_get("held_at")?,
        topic: row.try_get("topic")?,
        duration_minutes: row.try_get("duration_minutes")?,
        recorded_position: row.try_get("recorded_position")?,
    })
}

/// Writes every changed row back.
pub(super) async fn write(
    conn: &mut PgConnection,
    rows: &GroupRows,
) -> Result<(), ProjectionError> {
    write_groups(conn, rows).await?;
    write_roster(conn, rows).await?;
    write_sessions(conn, rows).await?;
    write_attendance(conn, rows).await
}

async fn write_groups(conn: &mut PgConnection, rows: &GroupRows) -> Result<(), ProjectionError> {
    let mut clinic = Vec::new();
    let mut id = Vec::new();
    let mut name = Vec::new();
    let mut model = Vec::new();
    let mut facilitator = Vec::new();
    let mut capacity = Vec::new();
    let mut schedule = Vec::new();
    let mut alumni = Vec::new();
    let mut online = Vec::new();
    let mut closed = Vec::new();
    let mut version = Vec::new();
    let mut roster_size = Vec::new();
    let mut attended = Vec::new();
    let mut recorded = Vec::new();
    let mut formed_at = Vec::new();
    let mut formed_position = Vec::new();
    for ((c, g), row) in rows.groups.upserts() {
        clinic.push(c.as_str());
        id.push(g.as_uuid());
        name.push(row.name.as_str());
        model.push(row.model.as_str());
        facilitator.push(row.facilitator.as_deref());
        capacity.push(row.capacity);
        schedule.push(row.schedule.as_deref());
        alumni.push(row.alumni);
        online.push(row.online);
        closed.push(row.closed);
        version.push(row.version);
        roster_size.push(row.roster_size);
        attended.push(row.attended_count);
        recorded.push(row.recorded_count);
        formed_at.push(row.formed_at);
        formed_position.push(row.formed_position);
    }
    if clinic.is_empty() {
        return Ok(());
    }
    sqlx::query(include_str!("sql/upsert_groups.sql"))
        .bind(&clinic)
        .bind(&id)
        .bind(&name)
        .bind(&model)
        .bind(&facilitator)
        .bind(&capacity)
        .bind(&schedule)
        .bind(&alumni)
        .bind(&online)
        .bind(&closed)
        .bind(&version)
        .bind(&roster_size)
        .bind(&attended)
        .bind(&recorded)
        .bind(&formed_at)
        .bind(&formed_position)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn write_roster(conn: &mut PgConnection, rows: &GroupRows) -> Result<(), ProjectionError> {
    let (mut clinic, mut group, mut member, mut joined_at, mut joined_position) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((c, g, m), row) in rows.roster.upserts() {
        clinic.push(c.as_str());
        group.push(g.as_uuid());
        member.push(m.as_uuid());
        joined_at.push(row.joined_at);
        joined_position.push(row.joined_position);
    }
    if !clinic.is_empty() {
        sqlx::query(include_str!("sql/upsert_roster.sql"))
            .bind(&clinic)
            .bind(&group)
            .bind(&member)
            .bind(&joined_at)
            .bind(&joined_position)
            .execute(&mut *conn)
            .await?;
    }
    let (mut clinic, mut group, mut member) = (Vec::new(), Vec::new(), Vec::new());
    for (c, g, m) in rows.roster.deletes() {
        clinic.push(c.as_str());
        group.push(g.as_uuid());
        member.push(m.as_uuid());
    }
    if !clinic.is_empty() {
        sqlx::query(include_str!("sql/delete_roster.sql"))
            .bind(&clinic)
            .bind(&group)
            .bind(&member)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn write_sessions(conn: &mut PgConnection, rows: &GroupRows) -> Result<(), ProjectionError> {
    let (mut clinic, mut id, mut group, mut status, mut starts_at) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut held_at, mut topic, mut duration, mut position) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((c, s), row) in rows.sessions.upserts() {
        clinic.push(c.as_str());
        id.push(s.as_uuid());
        group.push(row.group_id.as_uuid());
        status.push(row.status.as_str());
        starts_at.push(row.starts_at);
        held_at.push(row.held_at);
        topic.push(row.topic.as_str());
        duration.push(row.duration_minutes);
        position.push(row.recorded_position);
    }
    if clinic.is_empty() {
        return Ok(());
    }
    sqlx::query(include_str!("sql/upsert_sessions.sql"))
        .bind(&clinic)
        .bind(&id)
        .bind(&group)
        .bind(&status)
        .bind(&starts_at)
        .bind(&held_at)
        .bind(&topic)
        .bind(&duration)
        .bind(&position)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn write_attendance(
    conn: &mut PgConnection,
    rows: &GroupRows,
) -> Result<(), ProjectionError> {
    let (mut clinic, mut session, mut member) = (Vec::new(), Vec::new(), Vec::new());
    let (mut group, mut held_at, mut status) = (Vec::new(), Vec::new(), Vec::new());
    for ((c, s, m), row) in rows.attendance.upserts() {
        clinic.push(c.as_str());
        session.push(s.as_uuid());
        member.push(m.as_uuid());
        group.push(row.group_id.as_uuid());
        held_at.push(row.held_at);
        status.push(row.status.as_str());
    }
    if !clinic.is_empty() {
        sqlx::query(include_str!("sql/upsert_attendance.sql"))
            .bind(&clinic)
            .bind(&session)
            .bind(&member)
            .bind(&group)
            .bind(&held_at)
            .bind(&status)
            .execute(&mut *conn)
            .await?;
    }
    let (mut clinic, mut session, mut member) = (Vec::new(), Vec::new(), Vec::new());
    for (c, s, m) in rows.attendance.deletes() {
        clinic.push(c.as_str());
        session.push(s.as_uuid());
        member.push(m.as_uuid());
    }
    if !clinic.is_empty() {
        sqlx::query(include_str!("sql/delete_attendance.sql"))
            .bind(&clinic)
            .bind(&session)
            .bind(&member)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
