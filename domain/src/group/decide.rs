//! The group rules, read top to bottom like DOMAIN.md:
//! - nothing is dated before the group was formed (a join, a session held);
//! - a group is formed once; a closed group refuses everything but a correction of its
//!   history (a wrong attendance would otherwise count in rates and at-risk flags for good);
//! - a member joins only while in treatment (or, for an alumni group, also in aftercare
//!   or alumni); never twice; never beyond capacity;
//! - a session's attendance lists exactly the roster at the time it was held (by the
//!   join and leave times recorded), each member once, even when recorded late;
//! - so that a recorded session's roster never changes afterwards, a join or leave may
//!   not be dated at or before a recorded session it would change, nor before the
//!   member's previous join or leave;
//! - corrections never overwrite: they are new events with a reason.

use time::OffsetDateTime;

use crate::values::{SessionStatus, Text};

use super::command::{
    CancelSession, CloseGroup, CorrectAttendance, FormGroup, GroupCommand, JoinGroup, LeaveGroup,
    RecordSession, ScheduleSession,
};
use super::error::GroupError;
use super::event::{
    AttendanceCorrected, GroupClosed, GroupEvent, GroupFormed, MemberJoined, MemberLeft,
    SessionCancelled, SessionHeld, SessionScheduled,
};
use super::state::{GroupProfile, GroupState, Session};

type Decision = Result<Vec<GroupEvent>, GroupError>;

/// Decides a group command against the group's state.
pub fn decide(state: &GroupState, command: GroupCommand) -> Decision {
    if let GroupCommand::FormGroup(c) = command {
        return form(state, c);
    }
    let Some(profile) = state.profile() else {
        return Err(GroupError::UnknownGroup);
    };
    if state.closed() && !matches!(command, GroupCommand::CorrectAttendance(_)) {
        return Err(GroupError::GroupClosed { group: profile.id });
    }
    match command {
        GroupCommand::FormGroup(c) => form(state, c),
        GroupCommand::JoinGroup(c) => join(state, profile, c),
        GroupCommand::LeaveGroup(c) => leave(state, c),
        GroupCommand::ScheduleSession(c) => schedule(state, c),
        GroupCommand::RecordSession(c) => record(state, profile, c),
        GroupCommand::CancelSession(c) => cancel(state, c),
        GroupCommand::CorrectAttendance(c) => correct(state, c),
        GroupCommand::CloseGroup(c) => close(c),
    }
}

fn form(state: &GroupState, c: FormGroup) -> Decision {
    if let Some(profile) = state.profile() {
        return Err(GroupError::AlreadyFormed { group: profile.id });
    }
    Ok(vec![GroupFormed {
        group_id: c.group,
        name: c.name.into_string(),
        model: c.model,
        facilitator: c.facilitator.map(Text::into_string),
        capacity: c.capacity,
        schedule: c.schedule.map(Text::into_string),
        alumni: c.alumni,
        online: c.online,
        formed_at: c.at,
    }
    .into()])
}

/// The latest held session (by held time) at or after `at` that `affected` selects.
fn recorded_since(
    state: &GroupState,
    at: OffsetDateTime,
    affected: impl Fn(&Session) -> bool,
) -> Option<&Session> {
    state
        .sessions()
        .iter()
        .filter(|s| s.held_at.is_some_and(|held| held >= at) && affected(s))
        .max_by_key(|s| (s.held_at, s.id))
}

/// The most members on the roster at any time from `at` on (the roster only grows at
/// a join, so it is enough to look at `at` and every later join).
fn busiest_roster_from(state: &GroupState, at: OffsetDateTime) -> usize {
    std::iter::once(at)
        .chain(
            state
                .memberships()
                .iter()
                .map(|m| m.joined_at)
                .filter(|joined| *joined > at),
        )
        .map(|t| state.roster_at(t).len())
        .max()
        .unwrap_or(0)
}

fn join(state: &GroupState, profile: &GroupProfile, c: JoinGroup) -> Decision {
    let member = c.member;
    if state.is_on_roster(member) {
        return Err(GroupError::AlreadyOnRoster { member });
    }
    not_before_formation(profile, "a join", c.at)?;
    if !profile.admits(c.member_stage) {
        return Err(if profile.alumni {
            GroupError::NotEligibleForAlumniGroup { member }
        } else {
            GroupError::MemberNotAdmitted { member }
        });
    }
    if state
        .latest_membership(member)
        .and_then(|m| m.left_at)
        .is_some_and(|left| c.at < left)
    {
        return Err(GroupError::RosterChangeOutOfOrder { member });
    }
    if let Some(session) = recorded_since(state, c.at, |_| true) {
        return Err(GroupError::RosterChangeBeforeRecordedSession {
            session: session.id,
        });
    }
    let capacity = profile.capacity.get();
    if busiest_roster_from(state, c.at) >= usize::from(capacity) {
        return Err(GroupError::GroupFull { capacity });
    }
    Ok(vec![MemberJoined {
        member_id: member,
        joined_at: c.at,
    }
    .into()])
}

fn leave(state: &GroupState, c: LeaveGroup) -> Decision {
    let member = c.member;
    let Some(current) = state
        .latest_membership(member)
        .filter(|m| m.left_at.is_none())
    else {
        return Err(GroupError::NotOnRoster { member });
    };
    if c.at < current.joined_at {
        return Err(GroupError::RosterChangeOutOfOrder { member });
    }
    if let Some(session) = recorded_since(state, c.at, |s| s.lists(member)) {
        return Err(GroupError::RosterChangeBeforeRecordedSession {
            session: session.id,
        });
    }
    Ok(vec![MemberLeft {
        member_id: c.member,
        reason: c.reason.into_string(),
        left_at: c.at,
    }
    .into()])
}

fn schedule(state: &GroupState, c: ScheduleSession) -> Decision {
    if state.session(c.session).is_some() {
        return Err(GroupError::DuplicateSession { session: c.session });
    }
    Ok(vec![SessionScheduled {
        session_id: c.session,
        starts_at: c.starts_at,
        topic: c.topic.into_string(),
    }
    .into()])
}

fn not_yet_held(session: &Session) -> Result<(), GroupError> {
    match session.status {
        SessionStatus::Scheduled => Ok(()),
        SessionStatus::Held => Err(GroupError::SessionAlreadyHeld {
            session: session.id,
        }),
        SessionStatus::Cancelled => Err(GroupError::SessionCancelled {
            session: session.id,
        }),
    }
}

fn not_before_formation(
    profile: &GroupProfile,
    what: &'static str,
    at: OffsetDateTime,
) -> Result<(), GroupError> {
    if at < profile.formed_at {
        return Err(GroupError::BeforeFormation {
            what,
            formed_at: profile.formed_at,
        });
    }
    Ok(())
}

fn record(state: &GroupState, profile: &GroupProfile, c: RecordSession) -> Decision {
    match state.session(c.session) {
        Some(session) => not_yet_held(session)?,
        None if c.planned => return Err(GroupError::UnknownSession { session: c.session }),
        None => {}
    }
    not_before_formation(profile, "a session", c.held_at)?;
    let mut listed = Vec::with_capacity(c.attendance.len());
    for entry in &c.attendance {
        if listed.contains(&entry.member_id) {
            return Err(GroupError::DuplicateAttendance {
                member: entry.member_id,
            });
        }
        listed.push(entry.member_id);
    }
    let roster = state.roster_at(c.held_at);
    let missing: Vec<_> = roster
        .iter()
        .copied()
        .filter(|m| !listed.contains(m))
        .collect();
    let unexpected: Vec<_> = listed
        .iter()
        .copied()
        .filter(|m| !roster.contains(m))
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        return Err(GroupError::RosterMismatch {
            missing,
            unexpected,
        });
    }
    Ok(vec![SessionHeld {
        session_id: c.session,
        held_at: c.held_at,
        topic: c.topic.into_string(),
        duration_minutes: c.duration,
        attendance: c.attendance,
        recorded_presence_only: false,
    }
    .into()])
}

fn cancel(state: &GroupState, c: CancelSession) -> Decision {
    let session = state
        .session(c.session)
        .ok_or(GroupError::UnknownSession { session: c.session })?;
    not_yet_held(session)?;
    Ok(vec![SessionCancelled {
        session_id: c.session,
        reason: c.reason.into_string(),
        cancelled_at: c.at,
    }
    .into()])
}

fn correct(state: &GroupState, c: CorrectAttendance) -> Decision {
    let session = state
        .session(c.session)
        .ok_or(GroupError::UnknownSession { session: c.session })?;
    if session.status != SessionStatus::Held {
        return Err(GroupError::SessionNotHeld { session: c.session });
    }
    let recorded = session
        .attendance
        .iter()
        .find(|a| a.member_id == c.member)
        .ok_or(GroupError::NotInAttendance {
            session: c.session,
            member: c.member,
        })?;
    if recorded.status == c.to {
        return Err(GroupError::NothingToCorrect {
            session: c.session,
            member: c.member,
            status: c.to,
        });
    }
    Ok(vec![AttendanceCorrected {
        session_id: c.session,
        member_id: c.member,
        from: recorded.status,
        to: c.to,
        reason: c.reason.into_string(),
        corrected_at: c.at,
    }
    .into()])
}

fn close(c: CloseGroup) -> Decision {
    Ok(vec![GroupClosed {
        reason: c.reason.into_string(),
        closed_at: c.at,
    }
    .into()])
}

#[cfg(test)]
mod tests;
