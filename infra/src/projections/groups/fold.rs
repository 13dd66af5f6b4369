//! What each group event changes in the group read models: a pure fold over the rows a page
//! touches, mirroring [`clinic_domain::GroupState::evolve`] and the engagement rules.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use clinic_domain::group::Attendance;
use clinic_domain::values::{AttendanceStatus, GroupModel, SessionStatus};
use clinic_domain::{GroupEvent, GroupId, MemberId, SessionId};
use time::OffsetDateTime;
use uuid::Uuid;

use super::GroupEnvelope;
use crate::projections::{ProjectionError, Table};

/// A `group_summaries` row (its key is the clinic and group id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    /// The group's name.
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
    /// Attendance records that are present or late (after corrections).
    pub attended_count: i64,
    /// Every attendance record.
    pub recorded_count: i64,
    /// When it was formed.
    pub formed_at: OffsetDateTime,
    /// The log position of GroupFormed: the group list's order.
    pub formed_position: i64,
}

/// A `group_rosters` row (key: clinic, group, member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRow {
    /// When the member joined.
    pub joined_at: OffsetDateTime,
    /// The log position of MemberJoined.
    pub joined_position: i64,
}

/// A `group_sessions` row (key: clinic, session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The group.
    pub group_id: GroupId,
    /// Scheduled, held or cancelled.
    pub status: SessionStatus,
    /// When it was scheduled to start.
    pub starts_at: Option<OffsetDateTime>,
    /// When it was held.
    pub held_at: Option<OffsetDateTime>,
    /// Its topic (as held, or as planned).
    pub topic: String,
    /// How long it lasted.
    pub duration_minutes: Option<i32>,
    /// The log position of its first event: the session list's order.
    pub recorded_position: i64,
}

/// A `session_attendance` row (key: clinic, session, member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendanceRow {
    /// The group.
    pub group_id: GroupId,
    /// When the session was held.
    pub held_at: OffsetDateTime,
    /// The status after corrections.
    pub status: AttendanceStatus,
}

/// Keys of the group read models.
pub type GroupKey = (String, GroupId);
/// A roster entry's key.
pub type RosterKey = (String, GroupId, MemberId);
/// A session's key.
pub type SessionKey = (String, SessionId);
/// An attendance record's key.
pub type AttendanceKey = (String, SessionId, MemberId);

/// The group read-model rows one page reads and writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupRows {
    /// `group_summaries`.
    pub groups: Table<GroupKey, GroupRow>,
    /// `group_rosters`.
    pub roster: Table<RosterKey, RosterRow>,
    /// `group_sessions`.
    pub sessions: Table<SessionKey, SessionRow>,
    /// `session_attendance`.
    pub attendance: Table<AttendanceKey, AttendanceRow>,
    /// Who was on the roster when each schema-v1 session of the page was held (by group and
    /// the session event's version), as the domain's fold of the group's stream before that
    /// event says: v1 listed who was present, and the rest of that day's roster was absent.
    /// The loader replays the streams (the read model keeps only today's roster).
    pub rosters_at_v1_sessions: BTreeMap<(String, GroupId, i64), Vec<MemberId>>,
}

/// The keys a page's events read: what to load before folding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupKeys {
    /// Groups with an event in the page.
    pub groups: BTreeSet<GroupKey>,
    /// Roster entries joined or left.
    pub roster: BTreeSet<RosterKey>,
    /// Sessions scheduled, held or cancelled.
    pub sessions: BTreeSet<SessionKey>,
    /// Attendance records corrected.
    pub attendance: BTreeSet<AttendanceKey>,
    /// Groups with a session recorded by schema v1 (which listed only who was present), and
    /// the version of the last such event in the page: the loader replays each stream up to
    /// it for [`GroupRows::rosters_at_v1_sessions`].
    pub v1_sessions: BTreeMap<GroupKey, i64>,
}

impl GroupKeys {
    /// The keys `events` read. A row the page itself creates before reading it (a group
    /// formed, a session scheduled or held earlier in the page) needs no load. (A session held
    /// a second time also needs its earlier attendance: the loader adds it once it knows the
    /// session was held.)
    pub fn of(events: &[GroupEnvelope]) -> Self {
        let mut keys = Self::default();
        let mut formed = BTreeSet::new();
        let mut recorded = BTreeSet::new();
        for e in events {
            let clinic = || e.clinic.clone();
            match &e.event {
                GroupEvent::GroupFormed(_) => {
                    if !keys.groups.contains(&(clinic(), e.id)) {
                        formed.insert((clinic(), e.id));
                    }
                }
                _ if formed.contains(&(clinic(), e.id)) => {}
                _ => {
                    keys.groups.insert((clinic(), e.id));
                }
            }
            let mut session = |id: SessionId, creates: bool| {
                let key = (clinic(), id);
                if !recorded.contains(&key) {
                    keys.sessions.insert(key.clone());
                }
                if creates {
                    recorded.insert(key);
                }
            };
            match &e.event {
                GroupEvent::MemberJoined(j) => {
                    keys.roster.insert((clinic(), e.id, j.member_id));
                }
                GroupEvent::MemberLeft(l) => {
                    keys.roster.insert((clinic(), e.id, l.member_id));
                }
                GroupEvent::SessionScheduled(s) => session(s.session_id, true),
                GroupEvent::SessionHeld(s) => {
                    session(s.session_id, true);
                    if s.recorded_presence_only {
                        let last = keys.v1_sessions.entry((clinic(), e.id)).or_default();
                        *last = (*last).max(e.version);
                    }
                }
                GroupEvent::SessionCancelled(s) => session(s.session_id, false),
                GroupEvent::AttendanceCorrected(c) => {
                    if !recorded.contains(&(clinic(), c.session_id)) {
                        keys.attendance
                            .insert((clinic(), c.session_id, c.member_id));
                    }
                }
                GroupEvent::GroupFormed(_) | GroupEvent::GroupClosed(_) => {}
            }
        }
        keys
    }
}

/// Every attendance key of one session, for a range over the table.
fn session_range(clinic: &str, session: SessionId) -> (Bound<AttendanceKey>, Bound<AttendanceKey>) {
    (
        Bound::Included((clinic.to_owned(), session, MemberId::new(Uuid::nil()))),
        Bound::Included((clinic.to_owned(), session, MemberId::new(Uuid::max()))),
    )
}

impl GroupRows {
    /// Applies one group event to the rows.
    ///
    /// Total like the domain's `evolve`: a session or attendance record the group does not
    /// have is ignored. Only an event of a group without a summary (a stream whose first
    /// event is not GroupFormed) is an error.
    pub fn apply(&mut self, e: &GroupEnvelope) -> Result<(), ProjectionError> {
        let key = (e.clinic.clone(), e.id);
        if let GroupEvent::GroupFormed(f) = &e.event {
            if self.groups.get(&key).is_none() {
                self.groups.put(
                    key,
                    GroupRow {
                        name: f.name.clone(),
                        model: f.model,
                        facilitator: f.facilitator.clone(),
                        capacity: i32::from(f.capacity.get()),
                        schedule: f.schedule.clone(),
                        alumni: f.alumni,
                        online: f.online,
                        closed: false,
                        version: e.version,
                        roster_size: 0,
                        attended_count: 0,
                        recorded_count: 0,
                        formed_at: f.formed_at,
                        formed_position: e.position,
                    },
                );
                return Ok(());
            }
        }
        let Some(group) = self.groups.get_mut(&key) else {
            return Err(ProjectionError::MissingRow {
                position: e.position,
                entity: "group",
            });
        };
        group.version = e.version;
        let clinic = &e.clinic;
        match &e.event {
            GroupEvent::GroupFormed(_) => {}
            GroupEvent::MemberJoined(j) => {
                let roster_key = (clinic.clone(), e.id, j.member_id);
                if self.roster.get(&roster_key).is_none() {
                    group.roster_size += 1;
                    self.roster.put(
                        roster_key,
                        RosterRow {
                            joined_at: j.joined_at,
                            joined_position: e.position,
                        },
                    );
                }
            }
            GroupEvent::MemberLeft(l) => {
                let roster_key = (clinic.clone(), e.id, l.member_id);
                if self.roster.get(&roster_key).is_some() {
                    group.roster_size -= 1;
                    self.roster.delete(&roster_key);
                }
            }
            GroupEvent::SessionScheduled(s) => {
                let session_key = (clinic.clone(), s.session_id);
                if self.sessions.get(&session_key).is_none() {
                    self.sessions.put(
                        session_key,
                        SessionRow {
                            group_id: e.id,
                            status: SessionStatus::Scheduled,
                            starts_at: Some(s.starts_at),
                            held_at: None,
                            topic: s.topic.clone(),
                            duration_minutes: None,
                            recorded_position: e.position,
                        },
                    );
                }
            }
            GroupEvent::SessionHeld(s) => {
                let session_key = (clinic.clone(), s.session_id);
                let (starts_at, recorded_position) = self
                    .sessions
                    .get(&session_key)
                    .map_or((None, e.position), |old| {
                        (old.starts_at, old.recorded_position)
                    });
                self.sessions.put(
                    session_key,
                    SessionRow {
                        group_id: e.id,
                        status: SessionStatus::Held,
                        starts_at,
                        held_at: Some(s.held_at),
                        topic: s.topic.clone(),
                        duration_minutes: Some(i32::from(s.duration_minutes.get())),
                        recorded_position,
                    },
                );
                // The attendance list replaces any earlier one (as the domain's state does).
                let earlier: Vec<(AttendanceKey, AttendanceStatus)> = self
                    .attendance
                    .range(session_range(clinic, s.session_id))
                    .map(|(k, a)| (k.clone(), a.status))
                    .collect();
                for (attendance_key, status) in earlier {
                    tally(group, status, -1);
                    self.attendance.delete(&attendance_key);
                }
                // Schema v1 listed who was present: the rest of that day's roster was absent,
                // as the domain's fold counts it.
                let mut attendance = s.attendance.clone();
                if s.recorded_presence_only {
                    let roster = self
                        .rosters_at_v1_sessions
                        .get(&(clinic.clone(), e.id, e.version))
                        .ok_or(ProjectionError::MissingRow {
                            position: e.position,
                            entity: "roster of a v1 session",
                        })?;
                    attendance.extend(
                        roster
                            .iter()
                            .filter(|member| !s.attendance.iter().any(|a| a.member_id == **member))
                            .map(|&member_id| Attendance {
                                member_id,
                                status: AttendanceStatus::Absent,
                            }),
                    );
                }
                for entry in &attendance {
                    tally(group, entry.status, 1);
                    self.attendance.put(
                        (clinic.clone(), s.session_id, entry.member_id),
                        AttendanceRow {
                            group_id: e.id,
                            held_at: s.held_at,
                            status: entry.status,
                        },
                    );
                }
            }
            GroupEvent::SessionCancelled(c) => {
                if let Some(session) = self.sessions.get_mut(&(clinic.clone(), c.session_id)) {
                    session.status = SessionStatus::Cancelled;
                }
            }
            GroupEvent::AttendanceCorrected(c) => {
                let attendance_key = (clinic.clone(), c.session_id, c.member_id);
                if let Some(record) = self.attendance.get_mut(&attendance_key) {
                    tally(group, record.status, -1);
                    tally(group, c.to, 1);
                    record.status = c.to;
                }
            }
            GroupEvent::GroupClosed(_) => group.closed = true,
        }
        Ok(())
    }
}

/// Counts one attendance record into (or out of) the group's attendance rate.
fn tally(group: &mut GroupRow, status: AttendanceStatus, delta: i64) {
    group.recorded_count += delta;
    if status.attended() {
        group.attended_count += delta;
    }
}
