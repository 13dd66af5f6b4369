//! Upcasters: typed, pure readers of older payload versions into current event types.
//! Old rows are never rewritten; they are read through these on every load.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::group::{Attendance, SessionHeld};
use crate::ids::{MemberId, SessionId};
use crate::values::{AttendanceStatus, SessionMinutes};

/// `SessionHeld` schema v1, as first stored: `attendance` listed the ids of the
/// members present, nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionHeldV1 {
    /// The session.
    pub session_id: SessionId,
    /// When it was held.
    #[serde(with = "time::serde::rfc3339")]
    pub held_at: OffsetDateTime,
    /// What it covered.
    pub topic: String,
    /// How long it lasted.
    pub duration_minutes: SessionMinutes,
    /// The members present.
    pub attendance: Vec<MemberId>,
}

/// v1 recorded presence only: each listed member becomes `present`, and the event is
/// marked `recorded_presence_only`. The roster at the time is not in the event, so the
/// upcaster cannot list the absent members itself; folding the event
/// ([`crate::group::GroupState::evolve`], and so every view in [`crate::engagement`])
/// adds every member on the roster at `held_at` it does not list as `absent` (v1 had
/// no way to say late or excused).
impl From<SessionHeldV1> for SessionHeld {
    fn from(v1: SessionHeldV1) -> Self {
        Self {
            session_id: v1.session_id,
            held_at: v1.held_at,
            topic: v1.topic,
            duration_minutes: v1.duration_minutes,
            attendance: v1
                .attendance
                .into_iter()
                .map(|member_id| Attendance {
                    member_id,
                    status: AttendanceStatus::Present,
                })
                .collect(),
            recorded_presence_only: true,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;
    use time::macros::datetime;
    use uuid::Uuid;

    use super::*;
    use crate::group::GroupEvent;

    #[test]
    fn a_v1_session_held_reads_as_v2_with_everyone_listed_present() {
        let stored = json!({
            "session_id": "5b7e1c1a-0000-4000-8000-000000000001",
            "held_at": "2025-09-02T18:00:00Z",
            "topic": "Coping with cravings",
            "duration_minutes": 90,
            "attendance": [
                "00000000-0000-4000-8000-00000000a11e",
                "00000000-0000-4000-8000-000000000b0b"
            ]
        });
        let event = GroupEvent::from_stored("SessionHeld", 1, stored).unwrap();
        let ann = MemberId::new(Uuid::parse_str("00000000-0000-4000-8000-00000000a11e").unwrap());
        let bob = MemberId::new(Uuid::parse_str("00000000-0000-4000-8000-000000000b0b").unwrap());
        assert_eq!(
            event,
            GroupEvent::SessionHeld(SessionHeld {
                session_id: SessionId::parse("5b7e1c1a-0000-4000-8000-000000000001").unwrap(),
                held_at: datetime!(2025-09-02 18:00 UTC),
                topic: "Coping with cravings".into(),
                duration_minutes: SessionMinutes::new(90).unwrap(),
                attendance: vec![
                    Attendance {
                        member_id: ann,
                        status: AttendanceStatus::Present
                    },
                    Attendance {
                        member_id: bob,
                        status: AttendanceStatus::Present
                    },
                ],
                recorded_presence_only: true,
            })
        );
        assert_eq!(event.schema_version(), 2);
    }

    /// Group formed, Ann, Bob and Cy joined on 1 September 2025, then two sessions
    /// stored in v1: Ann and Bob present on the 2nd, only Ann on the 9th.
    fn v1_history() -> Vec<GroupEvent> {
        let row = |event_type: &str, version: u16, data: serde_json::Value| {
            GroupEvent::from_stored(event_type, version, data).unwrap()
        };
        let joined = |member: &str| {
            row(
                "MemberJoined",
                1,
                json!({"member_id": member, "joined_at": "2025-09-01T09:00:00Z"}),
            )
        };
        vec![
            row(
                "GroupFormed",
                1,
                json!({
                    "group_id": "00000000-0000-4000-8000-000000000060",
                    "name": "Tuesday group",
                    "model": "support",
                    "capacity": 12,
                    "alumni": false,
                    "online": false,
                    "formed_at": "2025-09-01T09:00:00Z"
                }),
            ),
            joined(ANN),
            joined(BOB),
            joined(CY),
            row(
                "SessionHeld",
                1,
                json!({
                    "session_id": "5b7e1c1a-0000-4000-8000-000000000001",
                    "held_at": "2025-09-02T18:00:00Z",
                    "topic": "Coping with cravings",
                    "duration_minutes": 90,
                    "attendance": [ANN, BOB]
                }),
            ),
            row(
                "SessionHeld",
                1,
                json!({
                    "session_id": "5b7e1c1a-0000-4000-8000-000000000002",
                    "held_at": "2025-09-09T18:00:00Z",
                    "topic": "Triggers",
                    "duration_minutes": 90,
                    "attendance": [ANN]
                }),
            ),
        ]
    }

    const ANN: &str = "00000000-0000-4000-8000-00000000a11e";
    const BOB: &str = "00000000-0000-4000-8000-000000000b0b";
    const CY: &str = "00000000-0000-4000-8000-0000000000c7";

    fn id(text: &str) -> MemberId {
        MemberId::parse(text).unwrap()
    }

    #[test]
    fn folding_a_v1_session_counts_the_roster_members_it_leaves_out_as_absent() {
        use crate::engagement;
        use AttendanceStatus::{Absent, Present};

        let events = v1_history();
        let state = crate::group::GroupState::from_events(&events);
        let second = SessionId::parse("5b7e1c1a-0000-4000-8000-000000000002").unwrap();
        let statuses: Vec<_> = state
            .session(second)
            .unwrap()
            .attendance
            .iter()
            .map(|a| (a.member_id, a.status))
            .collect();
        assert_eq!(
            statuses,
            vec![(id(ANN), Present), (id(BOB), Absent), (id(CY), Absent)]
        );

        let first_week = datetime!(2025-09-08 0:00 UTC);
        assert_eq!(
            engagement::sessions_attended(id(BOB), &events, first_week),
            1
        );
        assert_eq!(
            engagement::sessions_attended(id(CY), &events, first_week),
            0
        );
        assert_eq!(engagement::consecutive_absences(id(BOB), &events), 1);
        assert_eq!(engagement::consecutive_absences(id(CY), &events), 2);
        assert_eq!(state.consecutive_absences(id(CY)), 2);
        assert_eq!(
            engagement::members_who_stopped_attending(&events),
            vec![(id(CY), 2)]
        );
        assert!((engagement::attendance_rate(&events) - 0.5).abs() < f64::EPSILON);
    }

    #[test]
    fn an_absence_filled_in_from_a_v1_session_can_be_corrected() {
        use crate::group::{AttendanceCorrected, CorrectAttendance, GroupDecider};
        use crate::testing::given;
        use crate::values::Text;

        let second = SessionId::parse("5b7e1c1a-0000-4000-8000-000000000002").unwrap();
        let at = datetime!(2025-09-10 9:00 UTC);
        given::<GroupDecider>(v1_history())
            .when(CorrectAttendance {
                session: second,
                member: id(BOB),
                to: AttendanceStatus::Excused,
                reason: Text::parse("reason", "called in sick").unwrap(),
                at,
            })
            .then([AttendanceCorrected {
                session_id: second,
                member_id: id(BOB),
                from: AttendanceStatus::Absent,
                to: AttendanceStatus::Excused,
                reason: "called in sick".into(),
                corrected_at: at,
            }]);
    }

    #[test]
    fn a_v1_session_held_with_v2_shaped_attendance_is_refused() {
        let stored = json!({
            "session_id": "5b7e1c1a-0000-4000-8000-000000000001",
            "held_at": "2025-09-02T18:00:00Z",
            "topic": "t",
            "duration_minutes": 90,
            "attendance": [{"member_id": "00000000-0000-4000-8000-00000000a11e", "status": "present"}]
        });
        assert_eq!(
            GroupEvent::from_stored("SessionHeld", 1, stored),
            Err(crate::payload::DecodeError::InvalidData {
                event_type: "SessionHeld",
                schema_version: 1
            })
        );
    }
}
