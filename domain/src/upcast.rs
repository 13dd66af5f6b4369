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

/// v1 recorded presence only: each listed member becomes `present`. The roster at the
/// time is not in the event, so members who were absent stay unlisted (v1 had no way to
/// say late, excused or absent); views treat an unlisted member as not attending.
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
            })
        );
        assert_eq!(event.schema_version(), 2);
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
