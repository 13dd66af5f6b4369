//! What a group's past events mean now: the fold that `decide` reads.

use time::OffsetDateTime;

use crate::engagement;
use crate::ids::{GroupId, MemberId, SessionId};
use crate::values::{AttendanceStatus, Capacity, GroupModel, SessionMinutes, SessionStatus, Stage};

use super::event::{Attendance, GroupEvent};

/// What a group is, as formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupProfile {
    /// The group.
    pub id: GroupId,
    /// Its name.
    pub name: String,
    /// Its model.
    pub model: GroupModel,
    /// The facilitating staff member's `sub`.
    pub facilitator: Option<String>,
    /// Its capacity.
    pub capacity: Capacity,
    /// The weekly schedule in words.
    pub schedule: Option<String>,
    /// Marked for alumni.
    pub alumni: bool,
    /// Meets online.
    pub online: bool,
    /// When it was formed: nothing in it is dated before.
    pub formed_at: OffsetDateTime,
}

impl GroupProfile {
    /// Whether a member at `stage` belongs on this group's roster (DOMAIN.md: while admitted,
    /// or as alumni for a group marked for alumni; `None`: no stage, or an erased record). A
    /// join is refused otherwise, and a member who stops belonging (a discharge, an erasure)
    /// is taken off the roster by the service's scheduler.
    pub const fn admits(&self, stage: Option<Stage>) -> bool {
        match stage {
            Some(Stage::InTreatment) => true,
            Some(Stage::Aftercare | Stage::Alumni) => self.alumni,
            _ => false,
        }
    }
}

/// One stretch of a member on the roster: from joining to leaving (or still on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// The member.
    pub member: MemberId,
    /// When they joined.
    pub joined_at: OffsetDateTime,
    /// When they left, if they did.
    pub left_at: Option<OffsetDateTime>,
}

impl Membership {
    /// On the roster at `at`: joined at or before it, not yet left (a member who left
    /// at `at` is off the roster then).
    pub fn covers(&self, at: OffsetDateTime) -> bool {
        self.joined_at <= at && self.left_at.is_none_or(|left| at < left)
    }
}

/// One session of the group and, once held, its attendance after corrections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session.
    pub id: SessionId,
    /// Scheduled, held or cancelled.
    pub status: SessionStatus,
    /// When it was scheduled to start, if it was scheduled.
    pub starts_at: Option<OffsetDateTime>,
    /// When it was held, once held.
    pub held_at: Option<OffsetDateTime>,
    /// Its topic (as held, or as planned).
    pub topic: String,
    /// How long it lasted, once held.
    pub duration: Option<SessionMinutes>,
    /// Attendance as corrected (dashboards use this; the log keeps the originals).
    pub attendance: Vec<Attendance>,
}

impl Session {
    /// Whether its attendance lists `member` (whatever their status).
    pub fn lists(&self, member: MemberId) -> bool {
        self.attendance.iter().any(|a| a.member_id == member)
    }
}

/// The group as its events describe it: profile, roster (now and over time), sessions,
/// open or closed.
///
/// Only [`GroupState::evolve`] changes it, so its fields are private.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupState {
    version: u64,
    profile: Option<GroupProfile>,
    roster: Vec<MemberId>,
    memberships: Vec<Membership>,
    sessions: Vec<Session>,
    closed: bool,
}

impl GroupState {
    /// Folds events from the start of the stream.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a GroupEvent>) -> Self {
        events.into_iter().fold(Self::default(), Self::evolve)
    }

    /// Applies one event. Total: an event that refers to something unknown changes
    /// only the version.
    #[must_use]
    pub fn evolve(mut self, event: &GroupEvent) -> Self {
        self.version += 1;
        match event {
            GroupEvent::GroupFormed(e) => {
                self.profile = Some(GroupProfile {
                    id: e.group_id,
                    name: e.name.clone(),
                    model: e.model,
                    facilitator: e.facilitator.clone(),
                    capacity: e.capacity,
                    schedule: e.schedule.clone(),
                    alumni: e.alumni,
                    online: e.online,
                    formed_at: e.formed_at,
                });
            }
            GroupEvent::MemberJoined(e) => {
                if !self.roster.contains(&e.member_id) {
                    self.roster.push(e.member_id);
                    self.memberships.push(Membership {
                        member: e.member_id,
                        joined_at: e.joined_at,
                        left_at: None,
                    });
                }
            }
            GroupEvent::MemberLeft(e) => {
                self.roster.retain(|m| *m != e.member_id);
                if let Some(open) = self
                    .memberships
                    .iter_mut()
                    .find(|m| m.member == e.member_id && m.left_at.is_none())
                {
                    open.left_at = Some(e.left_at);
                }
            }
            GroupEvent::SessionScheduled(e) => {
                if self.session(e.session_id).is_none() {
                    self.sessions.push(Session {
                        id: e.session_id,
                        status: SessionStatus::Scheduled,
                        starts_at: Some(e.starts_at),
                        held_at: None,
                        topic: e.topic.clone(),
                        duration: None,
                        attendance: vec![],
                    });
                }
            }
            GroupEvent::SessionHeld(e) => {
                let mut attendance = e.attendance.clone();
                if e.recorded_presence_only {
                    // v1 listed who was present: the rest of that day's roster was absent.
                    let absent: Vec<Attendance> = self
                        .roster_at(e.held_at)
                        .into_iter()
                        .filter(|m| !e.attendance.iter().any(|a| a.member_id == *m))
                        .map(|member_id| Attendance {
                            member_id,
                            status: AttendanceStatus::Absent,
                        })
                        .collect();
                    attendance.extend(absent);
                }
                let held = Session {
                    id: e.session_id,
                    status: SessionStatus::Held,
                    starts_at: None,
                    held_at: Some(e.held_at),
                    topic: e.topic.clone(),
                    duration: Some(e.duration_minutes),
                    attendance,
                };
                match self.sessions.iter_mut().find(|s| s.id == e.session_id) {
                    Some(session) => {
                        *session = Session {
                            starts_at: session.starts_at,
                            ..held
                        }
                    }
                    None => self.sessions.push(held),
                }
            }
            GroupEvent::SessionCancelled(e) => {
                if let Some(session) = self.sessions.iter_mut().find(|s| s.id == e.session_id) {
                    session.status = SessionStatus::Cancelled;
                }
            }
            GroupEvent::AttendanceCorrected(e) => {
                if let Some(record) = self
                    .sessions
                    .iter_mut()
                    .find(|s| s.id == e.session_id)
                    .and_then(|s| s.attendance.iter_mut().find(|a| a.member_id == e.member_id))
                {
                    record.status = e.to;
                }
            }
            GroupEvent::GroupClosed(_) => self.closed = true,
        }
        self
    }

    /// How many events were folded: the stream's current version.
    pub const fn version(&self) -> u64 {
        self.version
    }

    /// The group as formed; `None` for an empty stream.
    pub const fn profile(&self) -> Option<&GroupProfile> {
        self.profile.as_ref()
    }

    /// The members on the roster now, in the order they joined.
    pub fn roster(&self) -> &[MemberId] {
        &self.roster
    }

    /// Whether `member` is on the roster now.
    pub fn is_on_roster(&self, member: MemberId) -> bool {
        self.roster.contains(&member)
    }

    /// Every stretch of every member on the roster, in the order they joined.
    pub fn memberships(&self) -> &[Membership] {
        &self.memberships
    }

    /// `member`'s latest stretch on the roster (the current one, if on it now).
    pub fn latest_membership(&self, member: MemberId) -> Option<&Membership> {
        self.memberships.iter().rev().find(|m| m.member == member)
    }

    /// The earliest time at or after `from` that `member`'s leave may be dated: not before
    /// their latest join, and after every recorded session that lists them (a recorded
    /// session's roster never changes). The scheduler dates a leave from the moment the member
    /// stopped belonging (their discharge), so sessions recorded late for the days after it
    /// need not list them.
    pub fn earliest_leave(&self, member: MemberId, from: OffsetDateTime) -> OffsetDateTime {
        let joined = self.latest_membership(member).map(|m| m.joined_at);
        let after_listed = self
            .sessions
            .iter()
            .filter(|s| s.lists(member))
            .filter_map(|s| s.held_at)
            .max()
            .map(|held| held + time::Duration::SECOND);
        [Some(from), joined, after_listed]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(from)
    }

    /// The members on the roster at `at` (by the join and leave times recorded), in the
    /// order they joined: whom a session held then must list.
    pub fn roster_at(&self, at: OffsetDateTime) -> Vec<MemberId> {
        self.memberships
            .iter()
            .filter(|m| m.covers(at))
            .map(|m| m.member)
            .collect()
    }

    /// Every session, in the order first recorded.
    pub fn sessions(&self) -> &[Session] {
        &self.sessions
    }

    /// A session by id.
    pub fn session(&self, id: SessionId) -> Option<&Session> {
        self.sessions.iter().find(|s| s.id == id)
    }

    /// Whether the group was closed.
    pub const fn closed(&self) -> bool {
        self.closed
    }

    /// Held sessions' corrected attendance, oldest first (by held time, then session id).
    fn held(&self) -> Vec<(SessionId, OffsetDateTime, &[Attendance])> {
        let mut held: Vec<_> = self
            .sessions
            .iter()
            .filter_map(|s| s.held_at.map(|at| (s.id, at, s.attendance.as_slice())))
            .collect();
        held.sort_by_key(|(id, at, _)| (*at, *id));
        held
    }

    /// Sessions of this group `member` attended (present or late) in the engagement
    /// window before `at` (see [`engagement::sessions_attended`]).
    pub fn sessions_attended(&self, member: MemberId, at: OffsetDateTime) -> u32 {
        engagement::count_attended(
            self.held()
                .into_iter()
                .flat_map(|(_, held_at, list)| statuses_of(member, held_at, list)),
            at,
        )
    }

    /// `member`'s absences from this group since they last attended, within their latest
    /// stretch on the roster: absences before they left and rejoined do not count.
    pub fn consecutive_absences(&self, member: MemberId) -> u32 {
        let since = self.latest_membership(member).map(|m| m.joined_at);
        engagement::trailing_absences(
            self.held()
                .into_iter()
                .filter(|(_, held_at, _)| since.is_none_or(|joined| *held_at >= joined))
                .flat_map(|(_, held_at, list)| statuses_of(member, held_at, list))
                .map(|(_, status)| status),
        )
    }

    /// The members on the roster now who stopped attending (see
    /// [`engagement::stopped_attending`]), with their run of absences, in the order they
    /// joined.
    pub fn members_who_stopped_attending(&self) -> Vec<(MemberId, u32)> {
        self.roster
            .iter()
            .map(|&member| (member, self.consecutive_absences(member)))
            .filter(|(_, run)| engagement::stopped_attending(*run))
            .collect()
    }

    /// Share of all recorded attendance that was present or late, 0 to 1 (0 before any session).
    pub fn attendance_rate(&self) -> f64 {
        engagement::rate(
            self.held()
                .into_iter()
                .flat_map(|(_, _, list)| list.iter().map(|a| a.status)),
        )
    }
}

fn statuses_of(
    member: MemberId,
    held_at: OffsetDateTime,
    list: &[Attendance],
) -> impl Iterator<Item = (OffsetDateTime, AttendanceStatus)> + '_ {
    list.iter()
        .filter(move |a| a.member_id == member)
        .map(move |a| (held_at, a.status))
}
