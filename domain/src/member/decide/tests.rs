#![allow(clippy::unwrap_used)]

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::aftercare::follow_up_id;
use crate::consent::DISCLOSURE_NOTICE;
use crate::decider::{Decider, ErrorKind};
use crate::ids::{CheckInId, ConsentId, DisclosureId, FollowUpId, GoalId, MemberId};
use crate::member::*;
use crate::testing::{self, Given};
use crate::values::*;

// ---- fixtures -------------------------------------------------------------------

fn given(events: impl IntoIterator<Item = MemberEvent>) -> Given<MemberDecider> {
    testing::given::<MemberDecider>(events)
}

/// Day `n` of the story, at 10:00 UTC (day 0 is 2026-03-01).
fn day(n: i64) -> OffsetDateTime {
    datetime!(2026-03-01 10:00 UTC) + Duration::days(n)
}

fn ann() -> MemberId {
    MemberId::new(Uuid::from_u128(0xA11E))
}

fn text(s: &str) -> Text {
    Text::parse("text", s).unwrap()
}

fn consent_id(n: u128) -> ConsentId {
    ConsentId::new(Uuid::from_u128(0xC0 + n))
}

fn check_in_id(n: u128) -> CheckInId {
    CheckInId::new(Uuid::from_u128(0xC1 + n))
}

fn goal_id(n: u128) -> GoalId {
    GoalId::new(Uuid::from_u128(0x60 + n))
}

fn disclosure_id(n: u128) -> DisclosureId {
    DisclosureId::new(Uuid::from_u128(0xD1 + n))
}

fn refer_ann() -> ReferMember {
    ReferMember {
        member: ann(),
        name: PersonName::parse("Ann Lee").unwrap(),
        email: Some(Email::parse("ann@example.org").unwrap()),
        phone: None,
        source: ReferralSource::Hospital,
        primary_substance: Some(text("alcohol")),
        at: day(0),
    }
}

fn referred() -> MemberEvent {
    MemberReferred {
        member_id: ann(),
        name: "Ann Lee".into(),
        email: Some("ann@example.org".into()),
        phone: None,
        source: ReferralSource::Hospital,
        primary_substance: Some("alcohol".into()),
        referred_at: day(0),
    }
    .into()
}

fn assessed() -> MemberEvent {
    IntakeCompleted {
        assessed_by: "dr-ray".into(),
        recommended_level: LevelOfCare::Residential,
        completed_at: day(1),
    }
    .into()
}

fn admitted() -> MemberEvent {
    MemberAdmitted {
        level_of_care: LevelOfCare::Residential,
        primary_counselor: Some("counselor-kim".into()),
        admitted_at: day(2),
    }
    .into()
}

fn in_treatment() -> Vec<MemberEvent> {
    vec![referred(), assessed(), admitted()]
}

fn discharged(reason: DischargeReason, at: OffsetDateTime) -> MemberEvent {
    MemberDischarged {
        reason,
        discharged_at: at,
    }
    .into()
}

fn follow_ups_for(episode: u32, discharged_at: OffsetDateTime) -> Vec<PlannedFollowUp> {
    [7u16, 30, 90, 180, 365]
        .into_iter()
        .map(|d| PlannedFollowUp {
            follow_up_id: follow_up_id(ann(), episode, d),
            day_offset: d,
            due_at: discharged_at + Duration::days(i64::from(d)),
        })
        .collect()
}

fn aftercare_started(at: OffsetDateTime) -> MemberEvent {
    AftercareStarted {
        plan: AftercarePlan::AlumniGroup,
        follow_ups: follow_ups_for(1, at),
        started_at: at,
    }
    .into()
}

/// In aftercare after a completed discharge on day 40.
fn in_aftercare() -> Vec<MemberEvent> {
    let mut events = in_treatment();
    events.push(discharged(DischargeReason::Completed, day(40)));
    events.push(aftercare_started(day(40)));
    events
}

fn with(
    mut events: Vec<MemberEvent>,
    more: impl IntoIterator<Item = MemberEvent>,
) -> Vec<MemberEvent> {
    events.extend(more);
    events
}

fn wrong_stage(command: &'static str, stage: Stage) -> MemberError {
    MemberError::WrongStage { command, stage }
}

fn consent_given(n: u128, scope: ConsentScope, recipient: &str) -> MemberEvent {
    ConsentGiven {
        consent_id: consent_id(n),
        scope,
        kind: ConsentKind::Standard,
        recipient: recipient.into(),
        purpose: "care coordination".into(),
        information: "attendance".into(),
        expires_at: Some(day(100)),
        expires_on: None,
        signed_by: "Ann Lee".into(),
        signed_at: day(3),
        form_version: "2024-1".into(),
    }
    .into()
}

fn scheduled(n: u128, due: OffsetDateTime) -> MemberEvent {
    CheckInScheduled {
        check_in_id: check_in_id(n),
        due_at: due,
        channel: CheckInChannel::Call,
    }
    .into()
}

fn completed(n: u128, at: OffsetDateTime) -> MemberEvent {
    CheckInCompleted {
        check_in_id: check_in_id(n),
        mood: Mood::new(3).unwrap(),
        craving: Craving::new(2).unwrap(),
        used: false,
        completed_at: at,
    }
    .into()
}

fn missed(n: u128, due: OffsetDateTime) -> MemberEvent {
    CheckInMissed {
        check_in_id: check_in_id(n),
        due_at: due,
    }
    .into()
}

fn disclose(
    consent: u128,
    recipient: &str,
    class: Option<&str>,
    at: OffsetDateTime,
) -> RecordDisclosure {
    RecordDisclosure {
        disclosure: disclosure_id(1),
        consent: consent_id(consent),
        recipient: text(recipient),
        recipient_class: class.map(text),
        purpose: text("care coordination"),
        description: text("attendance summary"),
        channel: text("secure fax"),
        disclosed_by: text("counselor-kim"),
        at,
    }
}

fn erase(at: OffsetDateTime) -> EraseMember {
    EraseMember {
        reason: text("member request"),
        at,
        retention_days: 365,
    }
}

// ---- referral and intake ------------------------------------------------------------

#[test]
fn referring_a_member_starts_their_stream() {
    let state = given([]).when(refer_ann()).then([referred()]);
    assert_eq!(state.stage(), Some(Stage::Referred));
    assert_eq!(state.member(), Some(ann()));
    assert_eq!(state.version(), 1);
}

#[test]
fn referring_a_member_twice_is_refused() {
    given([referred()])
        .when(refer_ann())
        .then_err(MemberError::AlreadyReferred { member: ann() });
}

#[test]
fn a_command_for_a_member_never_referred_is_refused() {
    given([])
        .when(EnrollAlumni { at: day(1) })
        .then_err(MemberError::UnknownMember);
}

#[test]
fn intake_is_completed_for_a_referred_member() {
    let state = given([referred()])
        .when(CompleteIntake {
            assessed_by: text("dr-ray"),
            recommended_level: LevelOfCare::Residential,
            at: day(1),
        })
        .then([assessed()]);
    assert_eq!(state.stage(), Some(Stage::Intake));
    assert_eq!(state.recommended_level(), Some(LevelOfCare::Residential));
}

#[test]
fn intake_is_completed_only_once_per_referral() {
    given([referred(), assessed()])
        .when(CompleteIntake {
            assessed_by: text("dr-ray"),
            recommended_level: LevelOfCare::Outpatient,
            at: day(2),
        })
        .then_err(wrong_stage("complete intake", Stage::Intake));
}

#[test]
fn an_intake_dated_before_the_referral_is_refused() {
    given([referred()])
        .when(CompleteIntake {
            assessed_by: text("dr-ray"),
            recommended_level: LevelOfCare::Outpatient,
            at: day(-1),
        })
        .then_err(MemberError::IntakeBeforeReferral {
            referred_at: day(0),
        });
}

// ---- admission and level of care ----------------------------------------------------

#[test]
fn admitting_an_assessed_member_puts_them_in_treatment() {
    let state = given([referred(), assessed()])
        .when(AdmitMember {
            level_of_care: LevelOfCare::Residential,
            primary_counselor: Some(text("counselor-kim")),
            at: day(2),
        })
        .then([admitted()]);
    assert_eq!(state.stage(), Some(Stage::InTreatment));
    assert_eq!(state.level_of_care(), Some(LevelOfCare::Residential));
    assert_eq!(state.primary_counselor(), Some("counselor-kim"));
}

#[test]
fn admission_requires_a_completed_intake() {
    given([referred()])
        .when(AdmitMember {
            level_of_care: LevelOfCare::Outpatient,
            primary_counselor: None,
            at: day(1),
        })
        .then_err(wrong_stage("admit", Stage::Referred));
}

#[test]
fn an_admission_dated_before_the_intake_assessment_is_refused() {
    let error = given([referred(), assessed()])
        .when(AdmitMember {
            level_of_care: LevelOfCare::Residential,
            primary_counselor: None,
            at: day(1) - Duration::hours(1),
        })
        .then_error();
    assert_eq!(
        error,
        MemberError::AdmissionBeforeIntake {
            intake_completed_at: day(1)
        }
    );
    assert_eq!(error.kind(), ErrorKind::Conflict);
}

#[test]
fn an_admission_recorded_late_for_the_day_of_intake_is_accepted() {
    given([referred(), assessed()])
        .when(AdmitMember {
            level_of_care: LevelOfCare::Residential,
            primary_counselor: Some(text("counselor-kim")),
            at: day(2),
        })
        .then([admitted()]);
}

#[test]
fn a_change_of_level_of_care_dated_before_the_admission_is_refused() {
    given(in_treatment())
        .when(ChangeLevelOfCare {
            to: LevelOfCare::IntensiveOutpatient,
            reason: text("stepping down"),
            at: day(1),
        })
        .then_err(MemberError::LevelChangeBeforeAdmission {
            admitted_at: day(2),
        });
}

#[test]
fn a_change_of_level_of_care_dated_before_the_readmission_is_refused() {
    let history = with(
        in_treatment(),
        [
            discharged(DischargeReason::AgainstAdvice, day(10)),
            readmitted(day(20)),
        ],
    );
    given(history)
        .when(ChangeLevelOfCare {
            to: LevelOfCare::Outpatient,
            reason: text("stepping down"),
            at: day(15),
        })
        .then_err(MemberError::LevelChangeBeforeAdmission {
            admitted_at: day(20),
        });
}

#[test]
fn stepping_down_records_both_levels() {
    let state = given(in_treatment())
        .when(ChangeLevelOfCare {
            to: LevelOfCare::IntensiveOutpatient,
            reason: text("stable for two weeks"),
            at: day(20),
        })
        .then([LevelOfCareChanged {
            from: LevelOfCare::Residential,
            to: LevelOfCare::IntensiveOutpatient,
            reason: "stable for two weeks".into(),
            changed_at: day(20),
        }]);
    assert_eq!(
        state.level_of_care(),
        Some(LevelOfCare::IntensiveOutpatient)
    );
}

#[test]
fn later_steps_of_an_episode_may_not_predate_its_last_change_of_level() {
    let stepped_down = with(
        in_treatment(),
        [LevelOfCareChanged {
            from: LevelOfCare::Residential,
            to: LevelOfCare::IntensiveOutpatient,
            reason: "stable".into(),
            changed_at: day(20),
        }
        .into()],
    );
    let refused = |command| MemberError::BeforeLevelChange {
        command,
        level_since: day(20),
    };
    given(stepped_down.clone())
        .when(ChangeLevelOfCare {
            to: LevelOfCare::Outpatient,
            reason: text("entered late"),
            at: day(15),
        })
        .then_err(refused("a change of level of care"));
    given(stepped_down.clone())
        .when(DischargeMember::new(DischargeReason::Transferred, day(19)))
        .then_err(refused("a discharge"));
    // At or after the change, both are recorded.
    given(stepped_down)
        .when(DischargeMember::new(DischargeReason::Transferred, day(20)))
        .then([MemberDischarged {
            reason: DischargeReason::Transferred,
            discharged_at: day(20),
        }]);
}

#[test]
fn changing_to_the_current_level_of_care_is_refused() {
    given(in_treatment())
        .when(ChangeLevelOfCare {
            to: LevelOfCare::Residential,
            reason: text("no change"),
            at: day(20),
        })
        .then_err(MemberError::SameLevelOfCare {
            level: LevelOfCare::Residential,
        });
}

#[test]
fn changing_the_level_of_care_outside_treatment_is_refused() {
    given([referred(), assessed()])
        .when(ChangeLevelOfCare {
            to: LevelOfCare::Outpatient,
            reason: text("x"),
            at: day(2),
        })
        .then_err(wrong_stage("change level of care", Stage::Intake));
}

// ---- discharge and aftercare --------------------------------------------------------

#[test]
fn discharge_before_admission_is_refused() {
    given([referred(), assessed()])
        .when(DischargeMember::new(DischargeReason::Completed, day(3)))
        .then_err(wrong_stage("discharge", Stage::Intake));
}

#[test]
fn a_completed_discharge_starts_aftercare_with_follow_ups_at_7_30_90_180_and_365_days() {
    let state = given(in_treatment())
        .when(DischargeMember::new(DischargeReason::Completed, day(40)))
        .then([
            discharged(DischargeReason::Completed, day(40)),
            aftercare_started(day(40)),
        ]);
    assert_eq!(state.stage(), Some(Stage::Aftercare));
    assert_eq!(state.level_of_care(), None);
    let due: Vec<_> = state
        .follow_ups()
        .iter()
        .map(|f| (f.day_offset, f.due_at))
        .collect();
    assert_eq!(due[0], (7, day(47)));
    assert_eq!(due[4], (365, day(405)));
}

#[test]
fn a_discharge_against_advice_leaves_the_member_discharged_without_aftercare() {
    let state = given(in_treatment())
        .when(DischargeMember::new(
            DischargeReason::AgainstAdvice,
            day(10),
        ))
        .then([discharged(DischargeReason::AgainstAdvice, day(10))]);
    assert_eq!(state.stage(), Some(Stage::Discharged));
    assert!(state.follow_ups().is_empty());
}

#[test]
fn a_discharge_may_be_recorded_for_an_earlier_time_but_not_before_admission() {
    given(in_treatment())
        .when(DischargeMember::new(DischargeReason::Transferred, day(1)))
        .then_err(MemberError::DischargeBeforeAdmission {
            admitted_at: day(2),
        });
}

#[test]
fn the_follow_up_days_are_a_parameter_of_the_discharge() {
    let events = given(in_treatment())
        .when(DischargeMember {
            reason: DischargeReason::Completed,
            at: day(40),
            plan: AftercarePlan::StepDownProvider,
            follow_up_offsets_days: vec![14, 60],
        })
        .then_ok();
    let MemberEvent::AftercareStarted(started) = &events[1] else {
        panic!("expected AftercareStarted, got {:?}", events[1]);
    };
    assert_eq!(started.plan, AftercarePlan::StepDownProvider);
    let days: Vec<_> = started.follow_ups.iter().map(|f| f.day_offset).collect();
    assert_eq!(days, vec![14, 60]);
}

#[test]
fn repeated_follow_up_days_are_refused_as_invalid_input() {
    let error = given(in_treatment())
        .when(DischargeMember {
            follow_up_offsets_days: vec![7, 7],
            ..DischargeMember::new(DischargeReason::Completed, day(40))
        })
        .then_error();
    assert_eq!(
        error,
        MemberError::Value(ValueError::InvalidFollowUpOffsets { max: 3650 })
    );
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
}

#[test]
fn a_follow_up_falls_due_on_its_day() {
    let f = follow_up_id(ann(), 1, 7);
    let state = given(in_aftercare())
        .when(MarkFollowUpDue {
            follow_up: f,
            now: day(47),
        })
        .then([FollowUpDue {
            follow_up_id: f,
            day_offset: 7,
            due_at: day(47),
        }]);
    assert_eq!(state.follow_ups()[0].status, FollowUpStatus::Due);
}

#[test]
fn a_follow_up_cannot_fall_due_before_its_day() {
    let f = follow_up_id(ann(), 1, 30);
    given(in_aftercare())
        .when(MarkFollowUpDue {
            follow_up: f,
            now: day(47),
        })
        .then_err(MemberError::FollowUpNotYetDue {
            follow_up: f,
            due_at: day(70),
        });
}

#[test]
fn a_follow_up_falls_due_only_once() {
    let f = follow_up_id(ann(), 1, 7);
    let due = FollowUpDue {
        follow_up_id: f,
        day_offset: 7,
        due_at: day(47),
    };
    given(with(in_aftercare(), [due.into()]))
        .when(MarkFollowUpDue {
            follow_up: f,
            now: day(48),
        })
        .then_err(MemberError::FollowUpAlreadyDue { follow_up: f });
}

#[test]
fn recording_a_follow_up_outcome_completes_it() {
    let f = follow_up_id(ann(), 1, 7);
    let state = given(in_aftercare())
        .when(RecordFollowUp {
            follow_up: f,
            outcome: FollowUpOutcome::Abstinent,
            at: day(48),
        })
        .then([FollowUpCompleted {
            follow_up_id: f,
            outcome: FollowUpOutcome::Abstinent,
            completed_at: day(48),
        }]);
    assert_eq!(
        state.follow_ups()[0].outcome,
        Some(FollowUpOutcome::Abstinent)
    );
    assert_eq!(
        state.follow_ups_falling_due(day(48)),
        Vec::<FollowUpId>::new()
    );
}

#[test]
fn a_completed_follow_up_can_be_neither_recorded_again_nor_marked_due() {
    let f = follow_up_id(ann(), 1, 7);
    let done = FollowUpCompleted {
        follow_up_id: f,
        outcome: FollowUpOutcome::Relapsed,
        completed_at: day(46),
    };
    let history = with(in_aftercare(), [done.into()]);
    given(history.clone())
        .when(RecordFollowUp {
            follow_up: f,
            outcome: FollowUpOutcome::Abstinent,
            at: day(48),
        })
        .then_err(MemberError::FollowUpAlreadyCompleted { follow_up: f });
    given(history)
        .when(MarkFollowUpDue {
            follow_up: f,
            now: day(48),
        })
        .then_err(MemberError::FollowUpAlreadyCompleted { follow_up: f });
}

#[test]
fn an_unknown_follow_up_is_not_found() {
    let f = follow_up_id(ann(), 9, 7);
    let error = given(in_aftercare())
        .when(MarkFollowUpDue {
            follow_up: f,
            now: day(48),
        })
        .then_error();
    assert_eq!(error, MemberError::UnknownFollowUp { follow_up: f });
    assert_eq!(error.kind(), ErrorKind::NotFound);
}

#[test]
fn the_scheduler_finds_the_follow_ups_whose_day_has_come() {
    let state = MemberState::from_events(&in_aftercare());
    assert_eq!(state.follow_ups_falling_due(day(46)), vec![]);
    assert_eq!(
        state.follow_ups_falling_due(day(71)),
        vec![follow_up_id(ann(), 1, 7), follow_up_id(ann(), 1, 30)]
    );
}

// ---- alumni and readmission ---------------------------------------------------------

#[test]
fn a_member_in_aftercare_enrolls_as_alumni() {
    let state = given(in_aftercare())
        .when(EnrollAlumni { at: day(60) })
        .then([AlumniEnrolled {
            enrolled_at: day(60),
        }]);
    assert_eq!(state.stage(), Some(Stage::Alumni));
}

#[test]
fn a_member_discharged_against_advice_cannot_enroll_as_alumni() {
    given(with(
        in_treatment(),
        [discharged(DischargeReason::AgainstAdvice, day(9))],
    ))
    .when(EnrollAlumni { at: day(60) })
    .then_err(wrong_stage("enroll as alumni", Stage::Discharged));
}

#[test]
fn a_member_in_treatment_cannot_enroll_as_alumni() {
    given(in_treatment())
        .when(EnrollAlumni { at: day(60) })
        .then_err(wrong_stage("enroll as alumni", Stage::InTreatment));
}

fn readmit(at: OffsetDateTime) -> ReadmitMember {
    ReadmitMember {
        level_of_care: LevelOfCare::IntensiveOutpatient,
        primary_counselor: None,
        at,
    }
}

fn readmitted(at: OffsetDateTime) -> MemberEvent {
    MemberReadmitted {
        level_of_care: LevelOfCare::IntensiveOutpatient,
        primary_counselor: None,
        readmitted_at: at,
    }
    .into()
}

#[test]
fn a_discharged_member_is_readmitted_to_treatment() {
    let state = given(with(
        in_treatment(),
        [discharged(DischargeReason::AgainstAdvice, day(9))],
    ))
    .when(readmit(day(30)))
    .then([readmitted(day(30))]);
    assert_eq!(state.stage(), Some(Stage::InTreatment));
    assert_eq!(
        state.level_of_care(),
        Some(LevelOfCare::IntensiveOutpatient)
    );
    assert_eq!(state.episodes(), 2);
}

/// The first episode's follow-ups at `offsets` (days after the discharge on day 40), recorded
/// with the outcome `readmitted` at `at`.
fn closed_by_readmission(offsets: &[u16], at: OffsetDateTime) -> Vec<MemberEvent> {
    offsets
        .iter()
        .map(|&d| {
            FollowUpCompleted {
                follow_up_id: follow_up_id(ann(), 1, d),
                outcome: FollowUpOutcome::Readmitted,
                completed_at: at,
            }
            .into()
        })
        .collect()
}

/// The first episode's follow-up at `offset` (after the discharge on day 40) marked due.
fn first_follow_up_due(offset: u16) -> MemberEvent {
    FollowUpDue {
        follow_up_id: follow_up_id(ann(), 1, offset),
        day_offset: offset,
        due_at: day(40) + Duration::days(i64::from(offset)),
    }
    .into()
}

#[test]
fn members_in_aftercare_and_alumni_are_readmitted_too() {
    // Discharged on day 40: the follow-ups of days 7 and 30 fell due before day 90 (not yet
    // marked), those of days 90, 180 and 365 fall due after it.
    let mut events = vec![first_follow_up_due(7), first_follow_up_due(30)];
    events.extend(closed_by_readmission(&[90, 180, 365], day(90)));
    events.push(readmitted(day(90)));
    given(in_aftercare())
        .when(readmit(day(90)))
        .then(events.clone());
    let alumni = with(
        in_aftercare(),
        [AlumniEnrolled {
            enrolled_at: day(60),
        }
        .into()],
    );
    given(alumni).when(readmit(day(90))).then(events);
}

#[test]
fn a_member_in_treatment_cannot_be_readmitted() {
    given(in_treatment())
        .when(readmit(day(5)))
        .then_err(wrong_stage("readmit", Stage::InTreatment));
}

#[test]
fn a_readmission_dated_before_the_last_discharge_is_refused() {
    given(with(
        in_treatment(),
        [discharged(DischargeReason::AgainstAdvice, day(10))],
    ))
    .when(readmit(day(9)))
    .then_err(MemberError::ReadmissionBeforeDischarge {
        discharged_at: day(10),
    });
    given(in_aftercare()).when(readmit(day(39))).then_err(
        MemberError::ReadmissionBeforeDischarge {
            discharged_at: day(40),
        },
    );
}

#[test]
fn readmission_records_the_follow_ups_due_after_it_as_readmitted_and_keeps_those_due() {
    let f7 = follow_up_id(ann(), 1, 7);
    let due = FollowUpDue {
        follow_up_id: f7,
        day_offset: 7,
        due_at: day(47),
    };
    let closed = closed_by_readmission(&[30, 90, 180, 365], day(60));
    let state = given(with(in_aftercare(), [due.into()]))
        .when(readmit(day(60)))
        .then(with(closed.clone(), [readmitted(day(60))]));
    let left: Vec<_> = state
        .follow_ups()
        .iter()
        .map(|f| (f.day_offset, f.status, f.outcome))
        .collect();
    let readmitted_at = |d| {
        (
            d,
            FollowUpStatus::Completed,
            Some(FollowUpOutcome::Readmitted),
        )
    };
    assert_eq!(
        left,
        vec![
            (7, FollowUpStatus::Due, None),
            readmitted_at(30),
            readmitted_at(90),
            readmitted_at(180),
            readmitted_at(365),
        ]
    );
    let f30 = follow_up_id(ann(), 1, 30);
    let mut history = with(in_aftercare(), closed);
    history.push(readmitted(day(60)));
    given(history)
        .when(MarkFollowUpDue {
            follow_up: f30,
            now: day(70),
        })
        .then_err(MemberError::FollowUpAlreadyCompleted { follow_up: f30 });
}

#[test]
fn a_readmission_entered_late_records_a_follow_up_since_marked_due_as_readmitted() {
    // Discharged on day 40; the day-7 follow-up fell due on day 47 and the scheduler marked it.
    // The readmission, entered afterwards, happened on day 45: the member was back in treatment
    // before it fell due, so its outcome is known, as for those still planned.
    let f7 = follow_up_id(ann(), 1, 7);
    let due = FollowUpDue {
        follow_up_id: f7,
        day_offset: 7,
        due_at: day(47),
    };
    let mut expected: Vec<MemberEvent> = vec![FollowUpCompleted {
        follow_up_id: f7,
        outcome: FollowUpOutcome::Readmitted,
        completed_at: day(45),
    }
    .into()];
    expected.extend(closed_by_readmission(&[30, 90, 180, 365], day(45)));
    expected.push(readmitted(day(45)));
    let state = given(with(in_aftercare(), [due.into()]))
        .when(readmit(day(45)))
        .then(expected);
    assert!(state
        .follow_ups()
        .iter()
        .all(|f| f.outcome == Some(FollowUpOutcome::Readmitted)));
}

#[test]
fn readmission_marks_a_follow_up_that_fell_due_before_it_due_for_staff() {
    // The day-7 and day-30 follow-ups fell due on days 47 and 70, before the readmission on
    // day 80, and the scheduler had not marked them: what they would find is not "readmitted".
    let mut expected = vec![first_follow_up_due(7), first_follow_up_due(30)];
    expected.extend(closed_by_readmission(&[90, 180, 365], day(80)));
    expected.push(readmitted(day(80)));
    let state = given(in_aftercare()).when(readmit(day(80))).then(expected);
    let kept: Vec<_> = state
        .follow_ups()
        .iter()
        .map(|f| (f.day_offset, f.status))
        .collect();
    assert_eq!(
        kept,
        [
            (7, FollowUpStatus::Due),
            (30, FollowUpStatus::Due),
            (90, FollowUpStatus::Completed),
            (180, FollowUpStatus::Completed),
            (365, FollowUpStatus::Completed),
        ]
    );
}

#[test]
fn a_second_completed_discharge_plans_new_follow_ups() {
    let history = with(in_aftercare(), [readmitted(day(100))]);
    let events = given(history)
        .when(DischargeMember::new(DischargeReason::Completed, day(150)))
        .then_ok();
    let MemberEvent::AftercareStarted(started) = &events[1] else {
        panic!("expected AftercareStarted, got {:?}", events[1]);
    };
    assert_eq!(started.follow_ups, follow_ups_for(2, day(150)));
}

// ---- consent ------------------------------------------------------------------------

fn give_full(n: u128) -> GiveConsent {
    GiveConsent {
        consent: consent_id(n),
        scope: ConsentScope::FamilyContact,
        kind: ConsentKind::Standard,
        recipient: text("Treating Providers"),
        purpose: text("care coordination"),
        information: text("attendance"),
        expires_at: Some(day(100)),
        expires_on: None,
        signed_by: text("Ann Lee"),
        signed_at: day(3),
        form_version: text("2024-1"),
    }
}

#[test]
fn a_written_consent_is_recorded_with_every_42_cfr_2_31_element() {
    let state = given(in_treatment())
        .when(give_full(1))
        .then([consent_given(
            1,
            ConsentScope::FamilyContact,
            "Treating Providers",
        )]);
    assert!(state.consents()[0].in_force_at(day(4)));
}

#[test]
fn the_short_form_consent_is_a_standard_consent_for_the_clinic_signed_by_the_member() {
    let events = given([referred()])
        .when(GiveConsent::short_form(
            consent_id(1),
            ConsentScope::EmailOutreach,
            day(1),
        ))
        .then_ok();
    let MemberEvent::ConsentGiven(given) = &events[0] else {
        panic!("expected ConsentGiven, got {:?}", events[0]);
    };
    assert_eq!(given.kind, ConsentKind::Standard);
    assert_eq!(given.recipient, "the clinic");
    assert_eq!(given.signed_by, "the member");
    assert_eq!(given.signed_at, day(1));
    assert_eq!(given.expires_at, None);
    assert_eq!(given.purpose, ConsentScope::EmailOutreach.default_purpose());
    assert!(given.expires_on.is_some());
}

#[test]
fn the_short_form_texts_are_valid_texts() {
    for scope in ConsentScope::ALL {
        assert!(Text::parse("purpose", scope.default_purpose()).is_ok());
        assert!(Text::parse("information", scope.default_information()).is_ok());
    }
    for constant in [
        crate::consent::SHORT_FORM_RECIPIENT,
        crate::consent::SHORT_FORM_SIGNED_BY,
        crate::consent::SHORT_FORM_EXPIRES_ON,
        crate::consent::SHORT_FORM_VERSION,
    ] {
        assert!(Text::parse("constant", constant).is_ok());
    }
}

#[test]
fn a_consent_id_is_recorded_once() {
    given(with(
        in_treatment(),
        [consent_given(1, ConsentScope::FamilyContact, "x")],
    ))
    .when(give_full(1))
    .then_err(MemberError::DuplicateConsent {
        consent: consent_id(1),
    });
}

#[test]
fn a_consent_expiring_before_it_is_signed_is_invalid_input() {
    let error = given(in_treatment())
        .when(GiveConsent {
            expires_at: Some(day(2)),
            ..give_full(1)
        })
        .then_error();
    assert_eq!(error, MemberError::Value(ValueError::ExpiryBeforeSigning));
    assert!(error.is_invalid_input());
}

#[test]
fn a_consent_states_its_expiry_as_a_date_or_an_event() {
    let error = given(in_treatment())
        .when(GiveConsent {
            expires_at: None,
            expires_on: None,
            ..give_full(1)
        })
        .then_error();
    assert_eq!(error, MemberError::Value(ValueError::ConsentWithoutExpiry));
    assert!(error.is_invalid_input());
    // An event or condition is enough ("none" where 42 CFR 2.31 allows it).
    let events = given(in_treatment())
        .when(GiveConsent {
            expires_at: None,
            expires_on: Some(text("none")),
            kind: ConsentKind::TreatmentPaymentOperations,
            ..give_full(1)
        })
        .then_ok();
    assert!(
        matches!(&events[..], [MemberEvent::ConsentGiven(given)] if given.expires_on.as_deref() == Some("none")),
        "{events:?}"
    );
    // ... and only there: another consent saying there is none would be in force for good.
    for none in [
        "None",
        "N/A.",
        "does  not expire",
        "never!",
        "never expires",
        "Valid until revoked",
        "This consent will not expire.",
        "indefinitely",
        "no expiration date",
        "won’t expire",
        "until withdrawn",
        "upon revocation",
    ] {
        given(in_treatment())
            .when(GiveConsent {
                expires_at: None,
                expires_on: Some(text(none)),
                ..give_full(1)
            })
            .then_err(ValueError::ConsentWithoutExpiry);
    }
    // An event that is one (a court date, the end of probation) is not taken for "none".
    for event in [
        "end of probation",
        "conclusion of the court case",
        "discharge",
        "until permanent housing is obtained",
        "discharge, never later than 12 months",
    ] {
        given(in_treatment())
            .when(GiveConsent {
                expires_at: None,
                expires_on: Some(text(event)),
                ..give_full(1)
            })
            .then_ok();
    }
    // With a date, the date ends it.
    let events = given(in_treatment())
        .when(GiveConsent {
            expires_on: Some(text("none")),
            ..give_full(1)
        })
        .then_ok();
    assert!(
        matches!(&events[..], [MemberEvent::ConsentGiven(given)] if given.expires_at == Some(day(100))),
        "{events:?}"
    );
}

#[test]
fn revoking_a_consent_records_when_and_how_it_was_received() {
    let state = given(with(
        in_treatment(),
        [consent_given(1, ConsentScope::FamilyContact, "x")],
    ))
    .when(RevokeConsent {
        consent: consent_id(1),
        how_received: text("in writing"),
        at: day(10),
    })
    .then([ConsentRevoked {
        consent_id: consent_id(1),
        received_at: day(10),
        how_received: "in writing".into(),
    }]);
    assert!(!state.consents()[0].in_force_at(day(10)));
    assert!(state.consents()[0].in_force_at(day(9)));
}

#[test]
fn a_consent_is_revoked_only_once() {
    let revoked = ConsentRevoked {
        consent_id: consent_id(1),
        received_at: day(10),
        how_received: "orally".into(),
    };
    given(with(
        in_treatment(),
        [
            consent_given(1, ConsentScope::FamilyContact, "x"),
            revoked.into(),
        ],
    ))
    .when(RevokeConsent {
        consent: consent_id(1),
        how_received: text("in writing"),
        at: day(11),
    })
    .then_err(MemberError::ConsentAlreadyRevoked {
        consent: consent_id(1),
    });
}

#[test]
fn a_revocation_cannot_be_received_before_the_consent_was_signed() {
    // Signed on day 3: a revocation dated day 2 would void it from the start, disclosures
    // made under it included.
    let revoke = |at| RevokeConsent {
        consent: consent_id(1),
        how_received: text("in writing"),
        at,
    };
    let signed = with(
        in_treatment(),
        [consent_given(1, ConsentScope::FamilyContact, "x")],
    );
    given(signed.clone())
        .when(revoke(day(2)))
        .then_err(ValueError::RevocationBeforeSigning);
    // As it was signed, too: it would never have been in force.
    given(signed.clone())
        .when(revoke(day(3)))
        .then_err(ValueError::RevocationBeforeSigning);
    given(signed).when(revoke(day(4))).then([ConsentRevoked {
        consent_id: consent_id(1),
        received_at: day(4),
        how_received: "in writing".into(),
    }]);
}

#[test]
fn revoking_an_unknown_consent_is_not_found() {
    let error = given(in_treatment())
        .when(RevokeConsent {
            consent: consent_id(7),
            how_received: text("in writing"),
            at: day(11),
        })
        .then_error();
    assert_eq!(
        error,
        MemberError::UnknownConsent {
            consent: consent_id(7)
        }
    );
    assert_eq!(error.kind(), ErrorKind::NotFound);
}

#[test]
fn revoking_a_scope_revokes_every_consent_of_that_scope_in_force() {
    let history = with(
        in_treatment(),
        [
            consent_given(1, ConsentScope::EmailOutreach, "the clinic"),
            consent_given(2, ConsentScope::FamilyContact, "x"),
            consent_given(3, ConsentScope::EmailOutreach, "the clinic"),
        ],
    );
    let revoked = |n| ConsentRevoked {
        consent_id: consent_id(n),
        received_at: day(20),
        how_received: "by email".into(),
    };
    let state = given(history)
        .when(RevokeConsentsOfScope {
            scope: ConsentScope::EmailOutreach,
            how_received: text("by email"),
            at: day(20),
        })
        .then([revoked(1), revoked(3)]);
    assert!(state
        .consent_in_force(ConsentScope::EmailOutreach, day(21))
        .is_none());
    assert!(state
        .consent_in_force(ConsentScope::FamilyContact, day(21))
        .is_some());
}

#[test]
fn revoking_a_scope_with_no_consent_in_force_is_refused() {
    given(in_treatment())
        .when(RevokeConsentsOfScope {
            scope: ConsentScope::EmailOutreach,
            how_received: text("by email"),
            at: day(20),
        })
        .then_err(MemberError::NothingToRevoke {
            scope: ConsentScope::EmailOutreach,
        });
    // A consent signed at the very instant is in force then, so the scope revocation takes it.
    given(with(
        in_treatment(),
        [consent_given(1, ConsentScope::EmailOutreach, "the clinic")],
    ))
    .when(RevokeConsentsOfScope {
        scope: ConsentScope::EmailOutreach,
        how_received: text("by email"),
        at: day(3),
    })
    .then([ConsentRevoked {
        consent_id: consent_id(1),
        received_at: day(3),
        how_received: "by email".into(),
    }]);
}

#[test]
fn an_expired_consent_no_longer_allows_email() {
    let state = MemberState::from_events(&with(
        in_treatment(),
        [consent_given(1, ConsentScope::EmailOutreach, "the clinic")],
    ));
    assert!(state
        .consent_in_force(ConsentScope::EmailOutreach, day(99))
        .is_some());
    assert!(state
        .consent_in_force(ConsentScope::EmailOutreach, day(100))
        .is_none());
}

// ---- disclosures --------------------------------------------------------------------

fn with_consent() -> Vec<MemberEvent> {
    with(
        in_treatment(),
        [consent_given(
            1,
            ConsentScope::FamilyContact,
            "Treating Providers",
        )],
    )
}

#[test]
fn a_disclosure_to_the_recipient_a_consent_names_is_recorded_with_the_notice() {
    given(with_consent())
        .when(disclose(1, "treating providers", None, day(5)))
        .then([disclosed(day(5))]);
}

#[test]
fn a_disclosure_to_a_member_of_the_named_class_is_recorded() {
    given(with_consent())
        .when(disclose(
            1,
            "Dr. Okafor",
            Some("TREATING PROVIDERS"),
            day(5),
        ))
        .then([DisclosureMade {
            recipient: "Dr. Okafor".into(),
            ..disclosure(day(5))
        }]);
}

#[test]
fn a_disclosure_to_a_recipient_the_consent_does_not_name_is_refused() {
    given(with_consent())
        .when(disclose(1, "Acme Corp HR", Some("employers"), day(5)))
        .then_err(MemberError::RecipientNotCovered {
            consent: consent_id(1),
        });
}

#[test]
fn a_disclosure_cannot_rely_on_a_short_form_consent_of_any_scope() {
    // The short form names "the clinic" as recipient: a class claim of "the clinic" must not
    // turn the member's consent to our own contact into a consent to disclose.
    for scope in [ConsentScope::EmailOutreach, ConsentScope::FamilyContact] {
        let short = GiveConsent::short_form(consent_id(1), scope, day(3));
        let events =
            MemberDecider::decide(&MemberState::from_events(&in_treatment()), short.into())
                .unwrap();
        given(with(in_treatment(), events))
            .when(disclose(1, "Anyone", Some("the clinic"), day(5)))
            .then_err(MemberError::ConsentNotForDisclosure {
                consent: consent_id(1),
            });
    }
}

#[test]
fn a_full_consent_of_the_email_outreach_scope_may_support_a_disclosure() {
    given(with(
        in_treatment(),
        [consent_given(
            1,
            ConsentScope::EmailOutreach,
            "Harbor Step-Down Clinic",
        )],
    ))
    .when(disclose(1, "Harbor Step-Down Clinic", None, day(5)))
    .then([DisclosureMade {
        recipient: "Harbor Step-Down Clinic".into(),
        ..disclosure(day(5))
    }]);
}

#[test]
fn a_disclosure_under_a_revoked_consent_is_refused() {
    let revoked = ConsentRevoked {
        consent_id: consent_id(1),
        received_at: day(10),
        how_received: "in writing".into(),
    };
    given(with(with_consent(), [revoked.into()]))
        .when(disclose(1, "treating providers", None, day(11)))
        .then_err(MemberError::ConsentNotInForce {
            consent: consent_id(1),
        });
}

#[test]
fn the_earliest_revocation_of_a_consent_counts_whatever_order_they_were_recorded_in() {
    // Revoked on its own as received on day 20; then the whole scope revoked as received on
    // day 15 (a form that arrived earlier, entered later): revoked from day 15.
    let revoked_on = |d| ConsentRevoked {
        consent_id: consent_id(1),
        received_at: day(d),
        how_received: "in writing".into(),
    };
    given(with(
        with_consent(),
        [revoked_on(20).into(), revoked_on(15).into()],
    ))
    .when(disclose(1, "treating providers", None, day(17)))
    .then_err(MemberError::ConsentNotInForce {
        consent: consent_id(1),
    });
}

#[test]
fn a_disclosure_made_before_the_revocation_was_received_may_still_be_recorded() {
    let revoked = ConsentRevoked {
        consent_id: consent_id(1),
        received_at: day(10),
        how_received: "in writing".into(),
    };
    given(with(with_consent(), [revoked.into()]))
        .when(disclose(1, "treating providers", None, day(9)))
        .then([disclosed(day(9))]);
}

#[test]
fn a_disclosure_under_an_expired_consent_is_refused() {
    given(with_consent())
        .when(disclose(1, "treating providers", None, day(100)))
        .then_err(MemberError::ConsentNotInForce {
            consent: consent_id(1),
        });
}

#[test]
fn a_disclosure_under_an_unknown_consent_is_refused() {
    given(with_consent())
        .when(disclose(2, "treating providers", None, day(5)))
        .then_err(MemberError::UnknownConsent {
            consent: consent_id(2),
        });
}

#[test]
fn a_disclosure_id_is_recorded_once() {
    let first = given(with_consent())
        .when(disclose(1, "treating providers", None, day(5)))
        .then_ok();
    given(with(with_consent(), first))
        .when(disclose(1, "treating providers", None, day(6)))
        .then_err(MemberError::DuplicateDisclosure {
            disclosure: disclosure_id(1),
        });
}

// ---- goals --------------------------------------------------------------------------

fn goal_set(n: u128) -> MemberEvent {
    GoalSet {
        goal_id: goal_id(n),
        text: "attend three meetings a week".into(),
        set_at: day(3),
    }
    .into()
}

#[test]
fn a_goal_is_set_in_treatment() {
    let state = given(in_treatment())
        .when(SetGoal {
            goal: goal_id(1),
            text: text("attend three meetings a week"),
            at: day(3),
        })
        .then([goal_set(1)]);
    assert_eq!(state.goals().len(), 1);
}

#[test]
fn a_goal_cannot_be_set_before_admission() {
    given([referred()])
        .when(SetGoal {
            goal: goal_id(1),
            text: text("x"),
            at: day(1),
        })
        .then_err(wrong_stage("set a goal", Stage::Referred));
}

#[test]
fn a_goal_id_is_set_once() {
    given(with(in_treatment(), [goal_set(1)]))
        .when(SetGoal {
            goal: goal_id(1),
            text: text("x"),
            at: day(4),
        })
        .then_err(MemberError::DuplicateGoal { goal: goal_id(1) });
}

#[test]
fn a_goal_is_achieved_once() {
    let achieved = GoalAchieved {
        goal_id: goal_id(1),
        achieved_at: day(9),
    };
    given(with(in_treatment(), [goal_set(1)]))
        .when(AchieveGoal {
            goal: goal_id(1),
            at: day(9),
        })
        .then([achieved.clone()]);
    given(with(in_treatment(), [goal_set(1), achieved.into()]))
        .when(AchieveGoal {
            goal: goal_id(1),
            at: day(10),
        })
        .then_err(MemberError::GoalAlreadyAchieved { goal: goal_id(1) });
    given(in_treatment())
        .when(AchieveGoal {
            goal: goal_id(2),
            at: day(10),
        })
        .then_err(MemberError::UnknownGoal { goal: goal_id(2) });
}

// ---- check-ins ----------------------------------------------------------------------

fn schedule(n: u128, due: OffsetDateTime) -> ScheduleCheckIn {
    ScheduleCheckIn {
        check_in: check_in_id(n),
        due_at: due,
        channel: CheckInChannel::Call,
        at: day(3),
    }
}

fn complete(n: u128, at: OffsetDateTime) -> CompleteCheckIn {
    CompleteCheckIn {
        check_in: check_in_id(n),
        mood: Mood::new(3).unwrap(),
        craving: Craving::new(2).unwrap(),
        used: false,
        at,
    }
}

#[test]
fn a_check_in_is_scheduled_for_a_member_in_treatment() {
    given(in_treatment())
        .when(schedule(1, day(5)))
        .then([scheduled(1, day(5))]);
}

#[test]
fn a_check_in_in_the_past_may_be_scheduled() {
    // Scheduled on day 3, due on day 2 (the admission's day).
    given(in_treatment())
        .when(schedule(1, day(2)))
        .then([scheduled(1, day(2))]);
}

#[test]
fn a_check_in_cannot_be_due_before_the_episodes_admission() {
    let admitted_at = day(2);
    given(in_treatment())
        .when(schedule(1, day(-1)))
        .then_err(MemberError::CheckInBeforeAdmission { admitted_at });
    // In aftercare too: the episode began at its admission.
    given(in_aftercare())
        .when(schedule(1, day(1)))
        .then_err(MemberError::CheckInBeforeAdmission { admitted_at });
}

#[test]
fn a_check_in_cannot_be_scheduled_before_admission() {
    given([referred()])
        .when(schedule(1, day(5)))
        .then_err(wrong_stage("schedule a check-in", Stage::Referred));
}

#[test]
fn a_check_in_id_is_scheduled_once() {
    given(with(in_treatment(), [scheduled(1, day(5))]))
        .when(schedule(1, day(6)))
        .then_err(MemberError::DuplicateCheckIn {
            check_in: check_in_id(1),
        });
}

#[test]
fn completing_a_check_in_records_mood_craving_and_use() {
    let state = given(with(in_treatment(), [scheduled(1, day(5))]))
        .when(complete(1, day(5)))
        .then([completed(1, day(5))]);
    assert_eq!(state.check_ins()[0].status, CheckInStatus::Completed);
}

#[test]
fn a_check_in_is_completed_once() {
    given(with(
        in_treatment(),
        [scheduled(1, day(5)), completed(1, day(5))],
    ))
    .when(complete(1, day(6)))
    .then_err(MemberError::CheckInAlreadyCompleted {
        check_in: check_in_id(1),
    });
}

#[test]
fn a_missed_check_in_cannot_be_completed_afterwards() {
    given(with(
        in_treatment(),
        [scheduled(1, day(5)), missed(1, day(5))],
    ))
    .when(complete(1, day(6)))
    .then_err(MemberError::CheckInAlreadyMissed {
        check_in: check_in_id(1),
    });
}

#[test]
fn a_check_in_not_completed_by_its_due_time_is_missed() {
    let state = given(with(in_treatment(), [scheduled(1, day(5))]))
        .when(MarkCheckInMissed {
            check_in: check_in_id(1),
            now: day(5) + Duration::minutes(1),
        })
        .then([missed(1, day(5))]);
    assert_eq!(state.consecutive_missed_check_ins(), 1);
}

#[test]
fn a_check_in_is_not_missed_before_its_due_time() {
    given(with(in_treatment(), [scheduled(1, day(5))]))
        .when(MarkCheckInMissed {
            check_in: check_in_id(1),
            now: day(4),
        })
        .then_err(MemberError::CheckInNotYetDue {
            check_in: check_in_id(1),
            due_at: day(5),
        });
}

#[test]
fn a_completed_check_in_is_not_missed() {
    given(with(
        in_treatment(),
        [scheduled(1, day(5)), completed(1, day(5))],
    ))
    .when(MarkCheckInMissed {
        check_in: check_in_id(1),
        now: day(6),
    })
    .then_err(MemberError::CheckInAlreadyCompleted {
        check_in: check_in_id(1),
    });
}

#[test]
fn a_check_in_is_missed_once() {
    given(with(
        in_treatment(),
        [scheduled(1, day(5)), missed(1, day(5))],
    ))
    .when(MarkCheckInMissed {
        check_in: check_in_id(1),
        now: day(6),
    })
    .then_err(MemberError::CheckInAlreadyMissed {
        check_in: check_in_id(1),
    });
}

#[test]
fn an_unknown_check_in_is_not_found() {
    given(in_treatment())
        .when(complete(9, day(6)))
        .then_err(MemberError::UnknownCheckIn {
            check_in: check_in_id(9),
        });
}

#[test]
fn two_missed_check_ins_in_a_row_open_outreach_and_a_completed_one_resets_the_run() {
    let history = with(
        in_treatment(),
        [
            scheduled(1, day(5)),
            scheduled(2, day(6)),
            scheduled(3, day(7)),
            missed(1, day(5)),
            missed(2, day(6)),
        ],
    );
    let state = MemberState::from_events(&history);
    assert_eq!(state.consecutive_missed_check_ins(), 2);
    assert!(crate::engagement::needs_outreach(
        state.consecutive_missed_check_ins()
    ));
    let state = given(history)
        .when(complete(3, day(7)))
        .then([completed(3, day(7))]);
    assert_eq!(state.consecutive_missed_check_ins(), 0);
}

#[test]
fn a_discharge_closes_open_check_ins_so_they_open_no_outreach() {
    let history = with(
        in_treatment(),
        [
            scheduled(1, day(5)),
            scheduled(2, day(6)),
            missed(1, day(5)),
            discharged(DischargeReason::AgainstAdvice, day(6) - Duration::hours(2)),
        ],
    );
    let state = MemberState::from_events(&history);
    assert_eq!(state.consecutive_missed_check_ins(), 0);
    assert_eq!(crate::engagement::consecutive_missed_check_ins(&history), 0);
    assert!(state.check_ins()[1].closed_by_discharge);
    assert_eq!(state.overdue_check_ins(day(7)), vec![]);
    given(history.clone())
        .when(MarkCheckInMissed {
            check_in: check_in_id(2),
            now: day(7),
        })
        .then_err(MemberError::CheckInClosedByDischarge {
            check_in: check_in_id(2),
        });
    given(history)
        .when(complete(2, day(7)))
        .then_err(MemberError::CheckInClosedByDischarge {
            check_in: check_in_id(2),
        });
}

#[test]
fn a_readmission_starts_a_new_run_of_missed_check_ins() {
    let history = with(
        in_aftercare(),
        [
            scheduled(1, day(45)),
            scheduled(2, day(50)),
            missed(1, day(45)),
            readmitted(day(48)),
        ],
    );
    let state = MemberState::from_events(&history);
    assert_eq!(state.consecutive_missed_check_ins(), 0);
    assert_eq!(crate::engagement::consecutive_missed_check_ins(&history), 0);
    // The aftercare check-in still open stays open in the new episode, and counts anew.
    let state = given(history)
        .when(MarkCheckInMissed {
            check_in: check_in_id(2),
            now: day(50),
        })
        .then([missed(2, day(50))]);
    assert_eq!(state.consecutive_missed_check_ins(), 1);
    assert!(!crate::engagement::needs_outreach(
        state.consecutive_missed_check_ins()
    ));
}

#[test]
fn the_scheduler_finds_the_check_ins_past_their_due_time() {
    let state = MemberState::from_events(&with(
        in_treatment(),
        [
            scheduled(1, day(5)),
            scheduled(2, day(6)),
            scheduled(3, day(4)),
        ],
    ));
    assert_eq!(
        state.overdue_check_ins(day(5)),
        vec![check_in_id(1), check_in_id(3)]
    );
}

// ---- erasure ------------------------------------------------------------------------

fn erased(at: OffsetDateTime) -> MemberEvent {
    MemberErased {
        reason: "member request".into(),
        erased_at: at,
    }
    .into()
}

#[test]
fn a_member_never_admitted_is_erased_at_once() {
    let state = given([referred(), assessed()])
        .when(erase(day(2)))
        .then([erased(day(2))]);
    assert!(state.erased());
    assert_eq!(state.group_eligibility(), None);
    // What identified them is not kept past the erasure either.
    assert!(state.named_in("Ann Lee").is_none());
}

fn erase_for(reason: &str, at: OffsetDateTime) -> EraseMember {
    EraseMember {
        reason: text(reason),
        ..erase(at)
    }
}

/// Referred as "Ann Lee", ann@example.org, with a phone number.
fn referred_with_phone() -> MemberEvent {
    let MemberEvent::MemberReferred(referral) = referred() else {
        unreachable!("referred() is a referral")
    };
    MemberReferred {
        phone: Some("+1 (555) 010-4477".into()),
        ..referral
    }
    .into()
}

#[test]
fn an_erasures_reason_may_not_say_who_the_member_was() {
    for (reason, by) in [
        ("Ann asked to be forgotten", "a word of their name"),
        ("request from LEE", "a word of their name"),
        ("wrote from ANN@example.org", "a word of their name"),
        ("called from 555-010-4477", "their phone number"),
        ("called from 5550104477", "their phone number"),
    ] {
        given([referred_with_phone(), assessed()])
            .when(erase_for(reason, day(2)))
            .then_err(ValueError::NamesTheMember {
                field: "reason",
                by,
            });
    }
    // Words that only contain a part of the name, and numbers that are not the phone's.
    for reason in [
        "annual retention review",
        "member request 2032-01-15",
        "leeway",
    ] {
        given([referred_with_phone(), assessed()])
            .when(erase_for(reason, day(2)))
            .then([MemberErased {
                reason: reason.into(),
                erased_at: day(2),
            }]);
    }
}

// ---- change of details ---------------------------------------------------------

fn change_details(at: OffsetDateTime) -> ChangeMemberDetails {
    ChangeMemberDetails {
        name: None,
        email: DetailChange::Keep,
        phone: DetailChange::Keep,
        at,
    }
}

#[test]
fn a_change_of_details_records_the_whole_set_as_it_now_stands() {
    let state = given(in_aftercare())
        .when(ChangeMemberDetails {
            phone: DetailChange::Set(Phone::parse("+1 555 010 9999").unwrap()),
            ..change_details(day(400))
        })
        .then([MemberDetailsChanged {
            name: "Ann Lee".into(),
            email: Some("ann@example.org".into()),
            phone: Some("+1 555 010 9999".into()),
            changed_at: day(400),
        }]);
    assert_eq!(state.phone(), Some("+1 555 010 9999"));
    assert_eq!(state.stage(), Some(Stage::Aftercare));

    let state = given([referred(), assessed()])
        .when(ChangeMemberDetails {
            name: Some(PersonName::parse("Ann Okafor").unwrap()),
            email: DetailChange::Remove,
            ..change_details(day(2))
        })
        .then([MemberDetailsChanged {
            name: "Ann Okafor".into(),
            email: None,
            phone: None,
            changed_at: day(2),
        }]);
    assert_eq!(
        (state.name(), state.email()),
        (Some("Ann Okafor"), None),
        "the state follows the change"
    );
}

#[test]
fn a_change_that_changes_nothing_records_nothing() {
    given([referred()])
        .when(change_details(day(1)))
        .then(Vec::<MemberEvent>::new());
    given([referred()])
        .when(ChangeMemberDetails {
            name: Some(PersonName::parse("Ann Lee").unwrap()),
            email: DetailChange::Set(Email::parse("ann@example.org").unwrap()),
            phone: DetailChange::Remove,
            ..change_details(day(1))
        })
        .then(Vec::<MemberEvent>::new());
}

#[test]
fn nobody_and_an_erased_member_have_no_details_to_change() {
    given([])
        .when(change_details(day(1)))
        .then_err(MemberError::UnknownMember);
    given([referred(), assessed(), erased(day(2))])
        .when(change_details(day(3)))
        .then_err(MemberError::Erased { member: ann() });
}

#[test]
fn an_erasures_reason_may_not_name_the_member_by_a_former_name_either() {
    let renamed = MemberDetailsChanged {
        name: "Ann Okafor".into(),
        email: Some("aok87@example.org".into()),
        phone: None,
        changed_at: day(2),
    };
    for (reason, by) in [
        ("Lee family request", "a word of their name"),
        ("Okafor family request", "a word of their name"),
        ("sent from aok87@example.org", "their email address"),
    ] {
        given([referred(), assessed(), renamed.clone().into()])
            .when(erase_for(reason, day(3)))
            .then_err(ValueError::NamesTheMember {
                field: "reason",
                by,
            });
    }
}

#[test]
fn a_member_in_treatment_is_not_erased() {
    given(in_treatment())
        .when(erase(day(500)))
        .then_err(wrong_stage("erase", Stage::InTreatment));
}

#[test]
fn treatment_records_are_kept_for_the_retention_period_after_the_last_discharge() {
    given(in_aftercare())
        .when(erase(day(404)))
        .then_err(MemberError::RetentionNotElapsed { until: day(405) });
    given(in_aftercare())
        .when(erase(day(405)))
        .then([erased(day(405))]);
}

fn disclosed(at: OffsetDateTime) -> MemberEvent {
    disclosure(at).into()
}

fn disclosure(at: OffsetDateTime) -> DisclosureMade {
    DisclosureMade {
        disclosure_id: disclosure_id(1),
        consent_id: consent_id(1),
        recipient: "treating providers".into(),
        purpose: "care coordination".into(),
        description: "attendance summary".into(),
        channel: "secure fax".into(),
        disclosed_by: "counselor-kim".into(),
        disclosed_at: at,
        notice: DISCLOSURE_NOTICE.into(),
    }
}

#[test]
fn the_accounting_of_a_disclosure_is_kept_for_the_retention_period_even_if_never_admitted() {
    let consent = consent_given(1, ConsentScope::FamilyContact, "Treating Providers");
    given([referred(), consent.clone(), disclosed(day(5))])
        .when(erase(day(369)))
        .then_err(MemberError::RetentionNotElapsed { until: day(370) });
    given([referred(), consent, disclosed(day(5))])
        .when(erase(day(370)))
        .then([erased(day(370))]);
}

#[test]
fn a_disclosure_after_the_discharge_keeps_the_records_longer() {
    let disclosed_later = [
        consent_given(1, ConsentScope::FamilyContact, "Treating Providers"),
        disclosed(day(100)),
    ];
    given(with(in_aftercare(), disclosed_later.clone()))
        .when(erase(day(405)))
        .then_err(MemberError::RetentionNotElapsed { until: day(465) });
    given(with(in_aftercare(), disclosed_later))
        .when(erase(day(465)))
        .then([erased(day(465))]);
}

#[test]
fn a_retention_reaching_past_the_calendar_keeps_the_records_instead_of_panicking() {
    let end_of_calendar = time::PrimitiveDateTime::MAX.assume_utc();
    given(in_aftercare())
        .when(EraseMember {
            retention_days: u32::MAX,
            ..erase(day(405))
        })
        .then_err(MemberError::RetentionNotElapsed {
            until: end_of_calendar,
        });
}

#[test]
fn a_completed_discharge_whose_follow_ups_fall_beyond_the_calendar_is_invalid_input() {
    let last_day = time::PrimitiveDateTime::MAX.assume_utc() - Duration::days(10);
    let error = given(in_treatment())
        .when(DischargeMember::new(DischargeReason::Completed, last_day))
        .then_error();
    assert_eq!(
        error,
        MemberError::Value(ValueError::TimeOutOfRange {
            field: "a follow-up's due date"
        })
    );
    assert!(error.is_invalid_input());
}

#[test]
fn erasing_an_erased_member_again_changes_nothing() {
    given([referred(), erased(day(1))])
        .when(erase(day(2)))
        .then(Vec::<MemberEvent>::new());
}

#[test]
fn nothing_more_is_recorded_for_an_erased_member() {
    given([referred(), erased(day(1))])
        .when(GiveConsent::short_form(
            consent_id(1),
            ConsentScope::EmailOutreach,
            day(2),
        ))
        .then_err(MemberError::Erased { member: ann() });
}

#[test]
fn erasure_empties_the_personal_texts_the_state_holds() {
    let history = with(
        in_treatment(),
        [
            consent_given(1, ConsentScope::FamilyContact, "Ann's sister"),
            goal_set(1),
            discharged(DischargeReason::Administrative, day(5)),
            erased(day(400)),
        ],
    );
    let state = MemberState::from_events(&history);
    assert_eq!(state.consents()[0].recipient, "");
    assert_eq!(state.consents()[0].signed_by, "");
    assert_eq!(state.goals()[0].text, "");
}

// ---- errors -------------------------------------------------------------------------

#[test]
fn rule_conflicts_are_not_invalid_input() {
    let error = wrong_stage("discharge", Stage::Referred);
    assert_eq!(error.kind(), ErrorKind::Conflict);
    assert!(!error.is_invalid_input());
    assert_eq!(
        error.to_string(),
        "discharge: this command does not fit the member's current stage"
    );
}

#[test]
fn error_messages_keep_clinical_facts_in_fields_not_in_the_text() {
    let revealing = [
        (wrong_stage("readmit", Stage::InTreatment), "treatment"),
        (
            MemberError::SameLevelOfCare {
                level: LevelOfCare::Residential,
            },
            "residential",
        ),
        (
            MemberError::DischargeBeforeAdmission {
                admitted_at: day(2),
            },
            "2026",
        ),
        (
            MemberError::NothingToRevoke {
                scope: ConsentScope::FamilyContact,
            },
            "family",
        ),
        (MemberError::RetentionNotElapsed { until: day(405) }, "2027"),
        (
            MemberError::CheckInNotYetDue {
                check_in: check_in_id(1),
                due_at: day(5),
            },
            "2026",
        ),
        (
            MemberError::FollowUpNotYetDue {
                follow_up: follow_up_id(ann(), 1, 7),
                due_at: day(47),
            },
            "2026",
        ),
    ];
    for (error, fact) in revealing {
        let message = error.to_string().to_lowercase();
        assert!(!message.contains(fact), "{message:?} reveals {fact:?}");
    }
    assert_eq!(
        MemberError::SameLevelOfCare {
            level: LevelOfCare::Residential
        }
        .to_string(),
        "the member is already at the level of care asked for"
    );
    assert_eq!(
        MemberError::RetentionNotElapsed { until: day(405) }.to_string(),
        "the member's treatment records are still within the retention period"
    );
}

#[test]
fn error_messages_carry_ids_not_names() {
    let error = MemberError::AlreadyReferred { member: ann() };
    assert_eq!(
        error.to_string(),
        format!("member {} has already been referred", ann())
    );
    let invalid: MemberError = PersonName::parse("").unwrap_err().into();
    assert_eq!(invalid.to_string(), "name must not be empty");
}

fn consent_until_end_of_treatment(signed_at: OffsetDateTime) -> MemberEvent {
    let MemberEvent::ConsentGiven(given) =
        consent_given(1, ConsentScope::FamilyContact, "Treating Providers")
    else {
        unreachable!("consent_given gives a ConsentGiven")
    };
    ConsentGiven {
        expires_at: None,
        expires_on: Some("end of treatment".into()),
        signed_at,
        ..given
    }
    .into()
}

#[test]
fn a_consent_until_the_end_of_treatment_ends_at_the_discharge_however_late_it_is_entered() {
    // Discharged on day 40; a paper consent signed on day 20 entered on day 50.
    given(with(
        in_aftercare(),
        [consent_until_end_of_treatment(day(20))],
    ))
    .when(disclose(1, "treating providers", None, day(45)))
    .then_err(MemberError::ConsentNotInForce {
        consent: consent_id(1),
    });
    let folded = MemberState::from_events(&with(
        in_aftercare(),
        [consent_until_end_of_treatment(day(20))],
    ));
    assert_eq!(folded.consents()[0].ended_at, Some(day(40)));
}
