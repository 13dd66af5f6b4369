//! Time travel: a stream's state as of an instant, folded from the events recorded up
//! to it (`memberAsOf`). Recorded time is the envelope's, so callers pass pairs of
//! (recorded at, event) in stream order.
//!
//! The fold stops at the first event recorded after the instant: a stream's order is
//! the truth, so the result is always the state after some prefix of the stream.

use time::OffsetDateTime;

use crate::group::{GroupEvent, GroupState};
use crate::member::{MemberEvent, MemberState};
use crate::values::{LevelOfCare, Stage};

fn prefix<E>(events: &[(OffsetDateTime, E)], at: OffsetDateTime) -> impl Iterator<Item = &E> + '_ {
    events
        .iter()
        .take_while(move |(recorded_at, _)| *recorded_at <= at)
        .map(|(_, event)| event)
}

/// The member as of `at`: the fold of the events recorded at or before it.
pub fn member_as_of(events: &[(OffsetDateTime, MemberEvent)], at: OffsetDateTime) -> MemberState {
    MemberState::from_events(prefix(events, at))
}

/// The member's stage as of `at` (`None`: not yet referred then).
pub fn stage_as_of(events: &[(OffsetDateTime, MemberEvent)], at: OffsetDateTime) -> Option<Stage> {
    member_as_of(events, at).stage()
}

/// The member's level of care as of `at` (`None`: not in treatment then).
pub fn level_of_care_as_of(
    events: &[(OffsetDateTime, MemberEvent)],
    at: OffsetDateTime,
) -> Option<LevelOfCare> {
    member_as_of(events, at).level_of_care()
}

/// The group as of `at`: the fold of the events recorded at or before it.
pub fn group_as_of(events: &[(OffsetDateTime, GroupEvent)], at: OffsetDateTime) -> GroupState {
    GroupState::from_events(prefix(events, at))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::member::{
        IntakeCompleted, LevelOfCareChanged, MemberAdmitted, MemberDischarged, MemberReferred,
    };
    use crate::values::{DischargeReason, ReferralSource};

    fn history() -> Vec<(OffsetDateTime, MemberEvent)> {
        let member = crate::ids::MemberId::new(uuid::Uuid::from_u128(1));
        vec![
            (
                datetime!(2026-01-05 9:00 UTC),
                MemberReferred {
                    member_id: member,
                    name: "Ann".into(),
                    email: None,
                    phone: None,
                    source: ReferralSource::Court,
                    primary_substance: None,
                    referred_at: datetime!(2026-01-05 9:00 UTC),
                }
                .into(),
            ),
            (
                datetime!(2026-01-06 9:00 UTC),
                IntakeCompleted {
                    assessed_by: "dr-ray".into(),
                    recommended_level: LevelOfCare::Residential,
                    completed_at: datetime!(2026-01-06 9:00 UTC),
                }
                .into(),
            ),
            (
                datetime!(2026-01-07 9:00 UTC),
                MemberAdmitted {
                    level_of_care: LevelOfCare::Residential,
                    primary_counselor: None,
                    admitted_at: datetime!(2026-01-07 9:00 UTC),
                }
                .into(),
            ),
            (
                datetime!(2026-02-07 9:00 UTC),
                LevelOfCareChanged {
                    from: LevelOfCare::Residential,
                    to: LevelOfCare::IntensiveOutpatient,
                    reason: "stepping down".into(),
                    changed_at: datetime!(2026-02-07 9:00 UTC),
                }
                .into(),
            ),
            (
                datetime!(2026-03-10 9:00 UTC),
                MemberDischarged {
                    reason: DischargeReason::AgainstAdvice,
                    discharged_at: datetime!(2026-03-09 17:00 UTC),
                }
                .into(),
            ),
        ]
    }

    #[test]
    fn before_the_referral_a_member_has_no_stage() {
        assert_eq!(
            stage_as_of(&history(), datetime!(2026-01-01 0:00 UTC)),
            None
        );
    }

    #[test]
    fn the_stage_as_of_an_instant_follows_the_events_recorded_by_then() {
        let h = history();
        assert_eq!(
            stage_as_of(&h, datetime!(2026-01-05 9:00 UTC)),
            Some(Stage::Referred)
        );
        assert_eq!(
            stage_as_of(&h, datetime!(2026-01-06 12:00 UTC)),
            Some(Stage::Intake)
        );
        assert_eq!(
            stage_as_of(&h, datetime!(2026-03-01 0:00 UTC)),
            Some(Stage::InTreatment)
        );
        assert_eq!(
            stage_as_of(&h, datetime!(2026-03-10 9:00 UTC)),
            Some(Stage::Discharged)
        );
    }

    #[test]
    fn a_backdated_discharge_counts_from_when_it_was_recorded() {
        // Discharged at 17:00 on the 9th, recorded on the 10th: as of the evening of the
        // 9th the record still said "in treatment", and time travel shows the record.
        let h = history();
        assert_eq!(
            stage_as_of(&h, datetime!(2026-03-09 20:00 UTC)),
            Some(Stage::InTreatment)
        );
    }

    fn group_history() -> Vec<(OffsetDateTime, GroupEvent)> {
        use crate::group::{Attendance, GroupFormed, MemberJoined, MemberLeft, SessionHeld};
        use crate::ids::{GroupId, MemberId, SessionId};
        use crate::values::{AttendanceStatus, Capacity, GroupModel, SessionMinutes};

        let ann = MemberId::new(uuid::Uuid::from_u128(1));
        let bob = MemberId::new(uuid::Uuid::from_u128(2));
        vec![
            (
                datetime!(2026-03-02 9:00 UTC),
                GroupFormed {
                    group_id: GroupId::new(uuid::Uuid::from_u128(9)),
                    name: "Tuesday group".into(),
                    model: GroupModel::Support,
                    facilitator: None,
                    capacity: Capacity::default(),
                    schedule: None,
                    alumni: false,
                    online: false,
                    formed_at: datetime!(2026-03-02 9:00 UTC),
                }
                .into(),
            ),
            (
                datetime!(2026-03-02 10:00 UTC),
                MemberJoined {
                    member_id: ann,
                    joined_at: datetime!(2026-03-02 10:00 UTC),
                }
                .into(),
            ),
            (
                datetime!(2026-03-04 10:00 UTC),
                MemberJoined {
                    member_id: bob,
                    joined_at: datetime!(2026-03-04 10:00 UTC),
                }
                .into(),
            ),
            (
                // Tuesday's session, recorded on Thursday.
                datetime!(2026-03-05 9:00 UTC),
                SessionHeld {
                    session_id: SessionId::new(uuid::Uuid::from_u128(3)),
                    held_at: datetime!(2026-03-03 18:00 UTC),
                    topic: "t".into(),
                    duration_minutes: SessionMinutes::DEFAULT,
                    attendance: vec![Attendance {
                        member_id: ann,
                        status: AttendanceStatus::Present,
                    }],
                    recorded_presence_only: false,
                }
                .into(),
            ),
            (
                datetime!(2026-03-06 10:00 UTC),
                MemberLeft {
                    member_id: ann,
                    reason: "moved".into(),
                    left_at: datetime!(2026-03-06 10:00 UTC),
                }
                .into(),
            ),
        ]
    }

    #[test]
    fn the_group_as_of_an_instant_is_its_record_up_to_then() {
        let h = group_history();
        let ann = crate::ids::MemberId::new(uuid::Uuid::from_u128(1));
        let bob = crate::ids::MemberId::new(uuid::Uuid::from_u128(2));

        let before = group_as_of(&h, datetime!(2026-03-01 0:00 UTC));
        assert_eq!(before, GroupState::default());

        let monday = group_as_of(&h, datetime!(2026-03-02 12:00 UTC));
        assert!(monday.profile().is_some());
        assert_eq!(monday.roster(), &[ann]);

        // The session was held on Tuesday but recorded on Thursday: as of Wednesday
        // the record had no session yet, though Bob had joined.
        let wednesday = group_as_of(&h, datetime!(2026-03-04 12:00 UTC));
        assert_eq!(wednesday.roster(), &[ann, bob]);
        assert!(wednesday.sessions().is_empty());

        let thursday = group_as_of(&h, datetime!(2026-03-05 9:00 UTC));
        assert_eq!(thursday.sessions().len(), 1);
        assert_eq!(
            thursday.sessions_attended(ann, datetime!(2026-03-05 9:00 UTC)),
            1
        );

        let saturday = group_as_of(&h, datetime!(2026-03-07 0:00 UTC));
        assert_eq!(saturday.roster(), &[bob]);
        assert_eq!(saturday, GroupState::from_events(h.iter().map(|(_, e)| e)));
    }

    #[test]
    fn the_level_of_care_as_of_an_instant_follows_steps_and_ends_at_discharge() {
        let h = history();
        assert_eq!(
            level_of_care_as_of(&h, datetime!(2026-01-20 0:00 UTC)),
            Some(LevelOfCare::Residential)
        );
        assert_eq!(
            level_of_care_as_of(&h, datetime!(2026-02-20 0:00 UTC)),
            Some(LevelOfCare::IntensiveOutpatient)
        );
        assert_eq!(
            level_of_care_as_of(&h, datetime!(2026-04-01 0:00 UTC)),
            None
        );
    }
}
