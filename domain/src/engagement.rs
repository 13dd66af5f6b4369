//! Engagement: the derived views the read side needs, as pure functions over events
//! (projections fold them live; time travel folds them up to an instant).
//!
//! - **Dose**: 3 to 4 group meetings a week. A member in treatment who attended fewer
//!   than the threshold (default 3, per clinic) sessions, present or late, in the 7 days
//!   before an instant is **at risk**.
//! - **Stopped attending**: 2 consecutive absences from one group flag the member to that
//!   group's facilitator. `absent` counts, `present`/`late` resets, `excused` neither
//!   counts nor resets (an excused week is not a no-show, nor attendance). The run is
//!   counted within the member's latest stretch on the roster: absences before they
//!   left and rejoined do not count.
//! - **Missed check-ins**: 2 in a row, in the order their outcomes were recorded, open an
//!   outreach item for the primary counselor; a completed check-in resets the count, and
//!   so do a discharge and a readmission (a run belongs to one stretch of care; the
//!   discharge also closes the check-ins still open, see [`crate::member::decide`]).
//!
//! Attendance is always read after corrections (AttendanceCorrected), as dashboards must,
//! and through the group's fold ([`GroupState`]), so a session read from schema v1
//! (which listed only who was present) counts the rest of that day's roster as absent.
//!
//! Functions taking "one or several groups' streams" expect each group's events in
//! stream order, one stream after another (as a stream starts with `GroupFormed`, a
//! `GroupFormed` after other events starts the next group's stream).

use time::{Duration, OffsetDateTime};

use crate::group::{GroupEvent, GroupState};
use crate::ids::{MemberId, SessionId};
use crate::member::MemberEvent;
use crate::values::{AttendanceStatus, Stage};

/// The length of the engagement window.
pub const ENGAGEMENT_WINDOW: Duration = Duration::days(7);
/// Sessions a week below which a member in treatment is at risk, unless the clinic sets another.
pub const DEFAULT_AT_RISK_THRESHOLD: u32 = 3;
/// Consecutive absences from one group that flag a member to its facilitator.
pub const STOPPED_ATTENDING_AFTER: u32 = 2;
/// Consecutive missed check-ins that open an outreach item.
pub const OUTREACH_AFTER_MISSED_CHECK_INS: u32 = 2;

/// One member's corrected attendance at one held session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttendanceRecord {
    /// The session.
    pub session_id: SessionId,
    /// When it was held.
    pub held_at: OffsetDateTime,
    /// The member.
    pub member_id: MemberId,
    /// Their status after corrections.
    pub status: AttendanceStatus,
}

/// Folds one or several groups' streams (one after another) into one state per group.
fn group_states<'a>(group_events: impl IntoIterator<Item = &'a GroupEvent>) -> Vec<GroupState> {
    let mut states = vec![];
    let mut current = GroupState::default();
    for event in group_events {
        if matches!(event, GroupEvent::GroupFormed(_)) && current.version() > 0 {
            states.push(std::mem::take(&mut current));
        }
        current = current.evolve(event);
    }
    if current.version() > 0 {
        states.push(current);
    }
    states
}

/// Every member's corrected attendance at every held session in `group_events` (one
/// or several groups' streams), oldest session first (by held time, then session id).
pub fn attendance_records<'a>(
    group_events: impl IntoIterator<Item = &'a GroupEvent>,
) -> Vec<AttendanceRecord> {
    let mut records: Vec<AttendanceRecord> = group_states(group_events)
        .iter()
        .flat_map(|state| state.sessions())
        .filter_map(|s| s.held_at.map(|held_at| (s, held_at)))
        .flat_map(|(s, held_at)| {
            s.attendance.iter().map(move |a| AttendanceRecord {
                session_id: s.id,
                held_at,
                member_id: a.member_id,
                status: a.status,
            })
        })
        .collect();
    records.sort_by_key(|r| (r.held_at, r.session_id));
    records
}

/// Sessions `member` attended (present or late) in the 7 days up to and including
/// `at`, across every group whose events are given.
pub fn sessions_attended<'a>(
    member: MemberId,
    group_events: impl IntoIterator<Item = &'a GroupEvent>,
    at: OffsetDateTime,
) -> u32 {
    count_attended(
        attendance_records(group_events)
            .into_iter()
            .filter(|r| r.member_id == member)
            .map(|r| (r.held_at, r.status)),
        at,
    )
}

/// At risk: in treatment and attending fewer sessions a week than `threshold`.
/// Members in any other stage are never at risk by this measure.
pub fn is_at_risk(stage: Stage, attended: u32, threshold: u32) -> bool {
    stage == Stage::InTreatment && attended < threshold
}

/// Whether `member` is at risk at `at`, from events: in treatment as of `at` (their
/// record up to then: `member_events` are (recorded at, event) pairs in stream order,
/// as [`crate::timeline`] reads them) and attending fewer than `threshold` sessions,
/// present or late after the corrections in `group_events`, in the 7 days up to `at`
/// across the groups given (one or several streams, one after another). For an earlier
/// instant, pass the group events recorded up to it.
pub fn at_risk<'a>(
    member: MemberId,
    member_events: &[(OffsetDateTime, MemberEvent)],
    group_events: impl IntoIterator<Item = &'a GroupEvent>,
    at: OffsetDateTime,
    threshold: u32,
) -> bool {
    match crate::timeline::stage_as_of(member_events, at) {
        Some(stage @ Stage::InTreatment) => is_at_risk(
            stage,
            sessions_attended(member, group_events, at),
            threshold,
        ),
        _ => false,
    }
}

/// `member`'s absences from one group since they last attended, within their latest
/// stretch on its roster (`group_events` of that group only).
pub fn consecutive_absences<'a>(
    member: MemberId,
    group_events: impl IntoIterator<Item = &'a GroupEvent>,
) -> u32 {
    GroupState::from_events(group_events).consecutive_absences(member)
}

/// Whether a run of absences flags the member to the facilitator.
pub const fn stopped_attending(consecutive_absences: u32) -> bool {
    consecutive_absences >= STOPPED_ATTENDING_AFTER
}

/// The members of one group (those currently on its roster) who stopped attending,
/// with their run of absences since they (re)joined, in the order they joined.
pub fn members_who_stopped_attending<'a>(
    group_events: impl IntoIterator<Item = &'a GroupEvent>,
) -> Vec<(MemberId, u32)> {
    GroupState::from_events(group_events).members_who_stopped_attending()
}

/// Share of all recorded attendance in `group_events` that was present or late, 0 to 1.
pub fn attendance_rate<'a>(group_events: impl IntoIterator<Item = &'a GroupEvent>) -> f64 {
    rate(
        attendance_records(group_events)
            .into_iter()
            .map(|r| r.status),
    )
}

/// Missed check-ins since the last completed one, in the order the outcomes were
/// recorded; a discharge or a readmission starts the run again.
pub fn consecutive_missed_check_ins<'a>(
    member_events: impl IntoIterator<Item = &'a MemberEvent>,
) -> u32 {
    member_events.into_iter().fold(0, |run, event| match event {
        MemberEvent::CheckInMissed(_) => run.saturating_add(1),
        MemberEvent::CheckInCompleted(_)
        | MemberEvent::MemberDischarged(_)
        | MemberEvent::MemberReadmitted(_) => 0,
        _ => run,
    })
}

/// Whether a run of missed check-ins opens an outreach item for the primary counselor.
pub const fn needs_outreach(consecutive_missed: u32) -> bool {
    consecutive_missed >= OUTREACH_AFTER_MISSED_CHECK_INS
}

/// Counts attended statuses held in the window `(at - 7 days, at]`. Within 7 days of
/// the calendar's start the window simply starts there.
pub(crate) fn count_attended(
    statuses: impl IntoIterator<Item = (OffsetDateTime, AttendanceStatus)>,
    at: OffsetDateTime,
) -> u32 {
    let since = at.checked_sub(ENGAGEMENT_WINDOW);
    let count = statuses
        .into_iter()
        .filter(|(held_at, status)| {
            since.is_none_or(|since| *held_at > since) && *held_at <= at && status.attended()
        })
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// The run of absences at the end of a chronological list of statuses.
pub(crate) fn trailing_absences(statuses: impl IntoIterator<Item = AttendanceStatus>) -> u32 {
    statuses.into_iter().fold(0, |run, status| match status {
        AttendanceStatus::Absent => run.saturating_add(1),
        AttendanceStatus::Excused => run,
        AttendanceStatus::Present | AttendanceStatus::Late => 0,
    })
}

/// Attended share of statuses, 0 when there are none.
pub(crate) fn rate(statuses: impl IntoIterator<Item = AttendanceStatus>) -> f64 {
    let (attended, all) = statuses.into_iter().fold((0u32, 0u32), |(a, n), s| {
        (
            a.saturating_add(u32::from(s.attended())),
            n.saturating_add(1),
        )
    });
    if all == 0 {
        0.0
    } else {
        f64::from(attended) / f64::from(all)
    }
}

#[cfg(test)]
mod tests;
