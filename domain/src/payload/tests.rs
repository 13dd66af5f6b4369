#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use time::macros::datetime;
use uuid::Uuid;

use super::*;
use crate::group::*;
use crate::ids::*;
use crate::member::*;
use crate::values::*;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn at() -> time::OffsetDateTime {
    datetime!(2026-03-02 18:00 UTC)
}

/// One event of every member type, with every optional field filled.
fn member_events() -> Vec<MemberEvent> {
    vec![
        MemberReferred {
            member_id: MemberId::new(id(1)),
            name: "Ann Lee".into(),
            email: Some("ann@example.org".into()),
            phone: Some("+1 555 010 2030".into()),
            source: ReferralSource::SelfReferral,
            primary_substance: Some("opioids".into()),
            referred_at: at(),
        }
        .into(),
        IntakeCompleted {
            assessed_by: "dr-ray".into(),
            recommended_level: LevelOfCare::IntensiveOutpatient,
            completed_at: at(),
        }
        .into(),
        MemberAdmitted {
            level_of_care: LevelOfCare::IntensiveOutpatient,
            primary_counselor: Some("kim".into()),
            admitted_at: at(),
        }
        .into(),
        LevelOfCareChanged {
            from: LevelOfCare::IntensiveOutpatient,
            to: LevelOfCare::Outpatient,
            reason: "stable".into(),
            changed_at: at(),
        }
        .into(),
        ConsentGiven {
            consent_id: ConsentId::new(id(2)),
            scope: ConsentScope::FamilyContact,
            kind: ConsentKind::TreatmentPaymentOperations,
            recipient: "Ann's sister".into(),
            purpose: "support".into(),
            information: "attendance".into(),
            expires_at: Some(at()),
            expires_on: Some("end of treatment".into()),
            signed_by: "Ann Lee".into(),
            signed_at: at(),
            form_version: "2024-1".into(),
        }
        .into(),
        ConsentRevoked {
            consent_id: ConsentId::new(id(2)),
            received_at: at(),
            how_received: "orally".into(),
        }
        .into(),
        GoalSet {
            goal_id: GoalId::new(id(3)),
            text: "reconnect with my daughter".into(),
            set_at: at(),
        }
        .into(),
        GoalAchieved {
            goal_id: GoalId::new(id(3)),
            achieved_at: at(),
        }
        .into(),
        CheckInScheduled {
            check_in_id: CheckInId::new(id(4)),
            due_at: at(),
            channel: CheckInChannel::InPerson,
        }
        .into(),
        CheckInCompleted {
            check_in_id: CheckInId::new(id(4)),
            mood: Mood::new(2).unwrap(),
            craving: Craving::new(7).unwrap(),
            used: true,
            completed_at: at(),
        }
        .into(),
        CheckInMissed {
            check_in_id: CheckInId::new(id(4)),
            due_at: at(),
        }
        .into(),
        MemberDischarged {
            reason: DischargeReason::AgainstAdvice,
            discharged_at: at(),
        }
        .into(),
        AftercareStarted {
            plan: AftercarePlan::CommunityResources,
            follow_ups: vec![PlannedFollowUp {
                follow_up_id: FollowUpId::new(id(5)),
                day_offset: 7,
                due_at: at(),
            }],
            started_at: at(),
        }
        .into(),
        FollowUpDue {
            follow_up_id: FollowUpId::new(id(5)),
            day_offset: 7,
            due_at: at(),
        }
        .into(),
        FollowUpCompleted {
            follow_up_id: FollowUpId::new(id(5)),
            outcome: FollowUpOutcome::ReducedUse,
            completed_at: at(),
        }
        .into(),
        AlumniEnrolled { enrolled_at: at() }.into(),
        MemberReadmitted {
            level_of_care: LevelOfCare::WithdrawalManagement,
            primary_counselor: None,
            readmitted_at: at(),
        }
        .into(),
        DisclosureMade {
            disclosure_id: DisclosureId::new(id(6)),
            consent_id: ConsentId::new(id(2)),
            recipient: "Dr. Okafor".into(),
            purpose: "referral".into(),
            description: "discharge summary".into(),
            channel: "fax".into(),
            disclosed_by: "kim".into(),
            disclosed_at: at(),
            notice: crate::consent::DISCLOSURE_NOTICE.into(),
        }
        .into(),
        MemberDetailsChanged {
            name: "Ann Okafor".into(),
            email: Some("ann.okafor@example.org".into()),
            phone: None,
            changed_at: at(),
        }
        .into(),
        MemberErased {
            reason: "member request".into(),
            erased_at: at(),
        }
        .into(),
    ]
}

/// One event of every group type.
fn group_events() -> Vec<GroupEvent> {
    vec![
        GroupFormed {
            group_id: GroupId::new(id(10)),
            name: "Evening support".into(),
            model: GroupModel::InterpersonalProcess,
            facilitator: Some("sam".into()),
            capacity: Capacity::new(8).unwrap(),
            schedule: Some("Mondays".into()),
            alumni: true,
            online: true,
            formed_at: at(),
        }
        .into(),
        MemberJoined {
            member_id: MemberId::new(id(1)),
            joined_at: at(),
        }
        .into(),
        MemberLeft {
            member_id: MemberId::new(id(1)),
            reason: "new job".into(),
            left_at: at(),
        }
        .into(),
        SessionScheduled {
            session_id: SessionId::new(id(11)),
            starts_at: at(),
            topic: "triggers".into(),
        }
        .into(),
        SessionHeld {
            session_id: SessionId::new(id(11)),
            held_at: at(),
            topic: "triggers".into(),
            duration_minutes: SessionMinutes::new(60).unwrap(),
            attendance: vec![Attendance {
                member_id: MemberId::new(id(1)),
                status: AttendanceStatus::Late,
            }],
            recorded_presence_only: false,
        }
        .into(),
        SessionCancelled {
            session_id: SessionId::new(id(11)),
            reason: "snow".into(),
            cancelled_at: at(),
        }
        .into(),
        AttendanceCorrected {
            session_id: SessionId::new(id(11)),
            member_id: MemberId::new(id(1)),
            from: AttendanceStatus::Late,
            to: AttendanceStatus::Present,
            reason: "clock was wrong".into(),
            corrected_at: at(),
        }
        .into(),
        GroupClosed {
            reason: "ended".into(),
            closed_at: at(),
        }
        .into(),
    ]
}

#[test]
fn every_event_type_is_covered_by_the_samples() {
    let member: Vec<_> = member_events()
        .iter()
        .map(MemberEvent::event_type)
        .collect();
    assert_eq!(member, MemberEvent::EVENT_TYPES);
    let group: Vec<_> = group_events().iter().map(GroupEvent::event_type).collect();
    assert_eq!(group, GroupEvent::EVENT_TYPES);
}

#[test]
fn every_member_event_reads_back_as_stored() {
    for event in member_events() {
        let back =
            MemberEvent::from_stored(event.event_type(), event.schema_version(), event.to_data());
        assert_eq!(back, Ok(event));
    }
}

#[test]
fn every_group_event_reads_back_as_stored() {
    for event in group_events() {
        let back =
            GroupEvent::from_stored(event.event_type(), event.schema_version(), event.to_data());
        assert_eq!(back, Ok(event));
    }
}

#[test]
fn stored_data_is_the_variants_own_fields_without_a_tag() {
    let data = group_events()[1].to_data();
    assert_eq!(
        data,
        json!({"member_id": "00000000-0000-0000-0000-000000000001", "joined_at": "2026-03-02T18:00:00Z"})
    );
}

#[test]
fn enums_are_stored_in_snake_case() {
    let data = member_events()[1].to_data();
    assert_eq!(data["recommended_level"], json!("intensive_outpatient"));
    assert_eq!(member_events()[0].to_data()["source"], json!("self"));
}

#[track_caller]
fn assert_personal_fields_are_strings(event_type: &str, fields: &[&str], data: &Value) {
    for field in fields {
        let value = data.get(*field).unwrap_or_else(|| {
            panic!("{event_type}: personal field {field} is not a top-level field of {data}")
        });
        assert!(
            value.is_string() || value.is_null(),
            "{event_type}.{field} must be a string or null, got {value}"
        );
    }
}

#[test]
fn personal_fields_are_top_level_strings_of_the_data() {
    for event in member_events() {
        let fields = MemberEvent::personal_fields(event.event_type());
        assert_personal_fields_are_strings(event.event_type(), fields, &event.to_data());
    }
    for event in group_events() {
        let fields = GroupEvent::personal_fields(event.event_type());
        assert_personal_fields_are_strings(event.event_type(), fields, &event.to_data());
        assert_eq!(
            fields.is_empty(),
            event.data_subject().is_none(),
            "{}",
            event.event_type()
        );
    }
}

#[test]
fn names_contact_details_and_free_text_about_the_member_are_personal() {
    assert_eq!(
        MemberEvent::personal_fields("MemberReferred"),
        &["name", "email", "phone", "primary_substance"]
    );
    assert_eq!(
        MemberEvent::personal_fields("MemberDetailsChanged"),
        &["name", "email", "phone"]
    );
    assert_eq!(MemberEvent::personal_fields("GoalSet"), &["text"]);
    assert_eq!(GroupEvent::personal_fields("MemberLeft"), &["reason"]);
    assert!(MemberEvent::personal_fields("MemberErased").is_empty());
}

#[test]
fn personal_fields_replaced_by_ciphertext_strings_still_decode() {
    for event in member_events() {
        let mut data = event.to_data();
        for field in MemberEvent::personal_fields(event.event_type()) {
            data[*field] = json!("enc:v1:3q2+7w==");
        }
        let back = MemberEvent::from_stored(event.event_type(), event.schema_version(), data);
        assert!(back.is_ok(), "{}", event.event_type());
    }
}

#[test]
fn an_unknown_event_type_is_refused() {
    assert_eq!(
        MemberEvent::from_stored("MemberTeleported", 1, json!({})),
        Err(DecodeError::UnknownEventType {
            category: "member",
            event_type: "MemberTeleported".into()
        })
    );
    assert!(GroupEvent::from_stored("MemberReferred", 1, json!({})).is_err());
}

#[test]
fn a_schema_version_without_an_upcaster_is_refused() {
    let event = &group_events()[1];
    assert_eq!(
        GroupEvent::from_stored("MemberJoined", 2, event.to_data()),
        Err(DecodeError::UnsupportedVersion {
            event_type: "MemberJoined",
            schema_version: 2,
            current: 1
        })
    );
    assert_eq!(
        GroupEvent::from_stored("SessionHeld", 3, json!({})),
        Err(DecodeError::UnsupportedVersion {
            event_type: "SessionHeld",
            schema_version: 3,
            current: 2
        })
    );
}

#[test]
fn a_decode_error_never_repeats_the_payload() {
    let data =
        json!({"member_id": "not-a-uuid", "name": "Ann Lee", "source": "self", "referred_at": "x"});
    let error = MemberEvent::from_stored("MemberReferred", 1, data).unwrap_err();
    assert_eq!(
        error,
        DecodeError::InvalidData {
            event_type: "MemberReferred",
            schema_version: 1
        }
    );
    assert!(!error.to_string().contains("Ann"));
}

#[test]
fn an_optional_field_missing_from_an_old_payload_reads_as_absent() {
    let data = json!({
        "member_id": "00000000-0000-0000-0000-000000000001",
        "name": "Ann",
        "source": "court",
        "referred_at": "2026-03-02T18:00:00Z"
    });
    let MemberEvent::MemberReferred(referred) =
        MemberEvent::from_stored("MemberReferred", 1, data).unwrap()
    else {
        panic!("expected MemberReferred");
    };
    assert_eq!((referred.email, referred.phone), (None, None));
}

#[test]
fn the_store_can_be_written_against_the_trait() {
    fn round_trip<E: StoredEvent + PartialEq + std::fmt::Debug>(event: &E) {
        let back = E::from_stored(event.event_type(), event.schema_version(), event.to_data());
        assert_eq!(back.as_ref(), Ok(event));
    }
    round_trip(&member_events()[0]);
    round_trip(&group_events()[4]);
    assert_eq!(<MemberEvent as StoredEvent>::CATEGORY, "member");
    assert_eq!(<GroupEvent as StoredEvent>::CATEGORY, "group");
}
