//! Aftercare: the follow-up schedule a completed discharge starts.
//!
//! Follow-ups fall due at days 7, 30, 90, 180 and 365 after discharge by default (the
//! clinic may configure other offsets). Their ids are derived, not random, so deciding
//! the same discharge twice gives the same events.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::ids::{FollowUpId, MemberId};
use crate::member::PlannedFollowUp;
use crate::values::ValueError;

/// The default follow-up days after a completed discharge.
pub const DEFAULT_FOLLOW_UP_OFFSETS_DAYS: [u16; 5] = [7, 30, 90, 180, 365];

/// The latest follow-up offset accepted: ten years.
pub const MAX_FOLLOW_UP_OFFSET_DAYS: u16 = 3650;

/// The id of the follow-up at `day_offset` of a member's treatment `episode`
/// (1 for the first admission, 2 after the first readmission, ...): a UUID v5 in the
/// member's namespace, so it is stable and never collides across members or episodes.
pub fn follow_up_id(member: MemberId, episode: u32, day_offset: u16) -> FollowUpId {
    let name = format!("follow-up/{episode}/{day_offset}");
    FollowUpId::new(Uuid::new_v5(&member.as_uuid(), name.as_bytes()))
}

/// The follow-ups of one aftercare plan, sorted by day: each due `discharged_at` plus
/// its offset. Refuses an offset outside 1..=3650 days or a repeated offset, and a
/// discharge so late in the calendar that a follow-up would fall beyond it.
pub fn plan_follow_ups(
    member: MemberId,
    episode: u32,
    discharged_at: OffsetDateTime,
    offsets_days: &[u16],
) -> Result<Vec<PlannedFollowUp>, ValueError> {
    let mut offsets = offsets_days.to_vec();
    offsets.sort_unstable();
    let len = offsets.len();
    offsets.dedup();
    let in_range = offsets
        .iter()
        .all(|d| (1..=MAX_FOLLOW_UP_OFFSET_DAYS).contains(d));
    if offsets.len() != len || !in_range {
        return Err(ValueError::InvalidFollowUpOffsets {
            max: MAX_FOLLOW_UP_OFFSET_DAYS,
        });
    }
    offsets
        .into_iter()
        .map(|day_offset| {
            let due_at = discharged_at
                .checked_add(Duration::days(i64::from(day_offset)))
                .ok_or(ValueError::TimeOutOfRange {
                    field: "a follow-up's due date",
                })?;
            Ok(PlannedFollowUp {
                follow_up_id: follow_up_id(member, episode, day_offset),
                day_offset,
                due_at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use time::macros::datetime;

    use super::*;

    fn ann() -> MemberId {
        MemberId::new(Uuid::from_u128(0xA11))
    }

    #[test]
    fn follow_ups_fall_due_the_given_days_after_discharge() {
        let planned = plan_follow_ups(
            ann(),
            1,
            datetime!(2026-03-01 15:00 UTC),
            &DEFAULT_FOLLOW_UP_OFFSETS_DAYS,
        )
        .unwrap();
        let due: Vec<_> = planned.iter().map(|f| (f.day_offset, f.due_at)).collect();
        assert_eq!(
            due,
            vec![
                (7, datetime!(2026-03-08 15:00 UTC)),
                (30, datetime!(2026-03-31 15:00 UTC)),
                (90, datetime!(2026-05-30 15:00 UTC)),
                (180, datetime!(2026-08-28 15:00 UTC)),
                (365, datetime!(2027-03-01 15:00 UTC)),
            ]
        );
    }

    #[test]
    fn follow_up_ids_are_stable_and_distinct_per_episode_and_day() {
        // Stored follow-ups are known by these ids: the derivation must never change.
        assert_eq!(
            follow_up_id(ann(), 1, 7).to_string(),
            "017a79b5-57c2-59dd-97a1-35a0db5e8bb7"
        );
        assert_ne!(follow_up_id(ann(), 1, 7), follow_up_id(ann(), 2, 7));
        assert_ne!(follow_up_id(ann(), 1, 7), follow_up_id(ann(), 1, 30));
        let bob = MemberId::new(Uuid::from_u128(0xB0B));
        assert_ne!(follow_up_id(ann(), 1, 7), follow_up_id(bob, 1, 7));
    }

    #[test]
    fn offsets_are_sorted_and_must_be_distinct_days_in_range() {
        let at = datetime!(2026-03-01 0:00 UTC);
        let planned = plan_follow_ups(ann(), 1, at, &[30, 7]).unwrap();
        assert_eq!(planned[0].day_offset, 7);
        let refused = Err(ValueError::InvalidFollowUpOffsets { max: 3650 });
        assert_eq!(plan_follow_ups(ann(), 1, at, &[7, 7]), refused);
        assert_eq!(plan_follow_ups(ann(), 1, at, &[0]), refused);
        assert_eq!(plan_follow_ups(ann(), 1, at, &[3651]), refused);
        assert_eq!(plan_follow_ups(ann(), 1, at, &[]), Ok(vec![]));
    }

    #[test]
    fn a_follow_up_beyond_the_calendar_is_refused_not_a_panic() {
        let last_day = time::PrimitiveDateTime::MAX.assume_utc();
        assert_eq!(
            plan_follow_ups(ann(), 1, last_day, &DEFAULT_FOLLOW_UP_OFFSETS_DAYS),
            Err(ValueError::TimeOutOfRange {
                field: "a follow-up's due date"
            })
        );
    }
}
