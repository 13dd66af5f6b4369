//! The member pipeline's rules, read top to bottom like DOMAIN.md.
//!
//! Stage transitions:
//! - refer: only on an empty stream;
//! - complete intake: only when referred;
//! - admit: only after intake (admission requires a completed assessment);
//! - change level of care, discharge: only in treatment;
//! - enroll alumni: only in aftercare (which only a completed discharge starts);
//! - readmit: from discharged, aftercare or alumni; the previous episode's follow-ups due after
//!   the readmission are recorded with the outcome `readmitted` (what they would find), not
//!   dropped, so the outcomes report counts the members who came back; one that fell due
//!   before it and was not marked yet (the scheduler behind) is marked due, for staff;
//! - change details (name, email, phone): at any stage; a change that changes nothing records
//!   nothing;
//! - once erased, nothing more is recorded (erasing again is a harmless no-op).
//!
//! Check-ins: a discharge closes the check-ins still open, which can then be neither
//! completed nor missed (so a check-in due around a discharge never opens outreach for
//! someone no longer in treatment), and the run of missed check-ins starts again at
//! discharge and at readmission. Check-ins scheduled in aftercare stay open across a
//! readmission.
//!
//! Time order: a step may be recorded late and dated in the past, but never before the
//! step it rests on: intake not before the referral, admission not before intake, a
//! change of level of care or a discharge not before the admission nor the episode's last
//! change of level, a readmission not before the last discharge, a revocation after the
//! consent's signing.

use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::aftercare::plan_follow_ups;
use crate::consent::{DISCLOSURE_NOTICE, SHORT_FORM_VERSION};
use crate::ids::{CheckInId, FollowUpId};
use crate::values::{
    CheckInStatus, ConsentKind, DischargeReason, FollowUpOutcome, FollowUpStatus, Stage, Text,
    ValueError,
};

use super::command::{
    AchieveGoal, AdmitMember, ChangeLevelOfCare, ChangeMemberDetails, CompleteCheckIn,
    CompleteIntake, DischargeMember, EnrollAlumni, EraseMember, GiveConsent, MarkCheckInMissed,
    MarkFollowUpDue, MemberCommand, ReadmitMember, RecordDisclosure, RecordFollowUp, ReferMember,
    RevokeConsent, RevokeConsentsOfScope, ScheduleCheckIn, SetGoal,
};
use super::error::MemberError;
use super::event::{
    AftercareStarted, AlumniEnrolled, CheckInCompleted, CheckInMissed, CheckInScheduled,
    ConsentGiven, ConsentRevoked, DisclosureMade, FollowUpCompleted, FollowUpDue, GoalAchieved,
    GoalSet, IntakeCompleted, LevelOfCareChanged, MemberAdmitted, MemberDetailsChanged,
    MemberDischarged, MemberErased, MemberEvent, MemberReadmitted, MemberReferred,
};
use super::state::{CheckIn, FollowUp, MemberState};

type Decision = Result<Vec<MemberEvent>, MemberError>;

/// Decides a member command against the member's state.
pub fn decide(state: &MemberState, command: MemberCommand) -> Decision {
    if let MemberCommand::ReferMember(c) = command {
        return refer(state, c);
    }
    let Some(stage) = state.stage() else {
        return Err(MemberError::UnknownMember);
    };
    if state.erased() {
        return match command {
            MemberCommand::EraseMember(_) => Ok(vec![]),
            _ => Err(erased(state)),
        };
    }
    match command {
        MemberCommand::ReferMember(c) => refer(state, c),
        MemberCommand::CompleteIntake(c) => complete_intake(state, stage, c),
        MemberCommand::AdmitMember(c) => admit(state, stage, c),
        MemberCommand::ChangeLevelOfCare(c) => change_level_of_care(state, stage, c),
        MemberCommand::GiveConsent(c) => give_consent(state, c),
        MemberCommand::RevokeConsent(c) => revoke_consent(state, c),
        MemberCommand::RevokeConsentsOfScope(c) => revoke_consents_of_scope(state, c),
        MemberCommand::SetGoal(c) => set_goal(state, stage, c),
        MemberCommand::AchieveGoal(c) => achieve_goal(state, c),
        MemberCommand::ScheduleCheckIn(c) => schedule_check_in(state, stage, c),
        MemberCommand::CompleteCheckIn(c) => complete_check_in(state, c),
        MemberCommand::MarkCheckInMissed(c) => mark_check_in_missed(state, c),
        MemberCommand::DischargeMember(c) => discharge(state, stage, c),
        MemberCommand::MarkFollowUpDue(c) => mark_follow_up_due(state, c),
        MemberCommand::RecordFollowUp(c) => record_follow_up(state, c),
        MemberCommand::EnrollAlumni(c) => enroll_alumni(stage, c),
        MemberCommand::ReadmitMember(c) => readmit(state, stage, c),
        MemberCommand::RecordDisclosure(c) => record_disclosure(state, c),
        MemberCommand::ChangeMemberDetails(c) => change_details(state, c),
        MemberCommand::EraseMember(c) => erase(state, stage, c),
    }
}

fn erased(state: &MemberState) -> MemberError {
    match state.member() {
        Some(member) => MemberError::Erased { member },
        None => MemberError::UnknownMember,
    }
}

fn require(stage: Stage, allowed: &[Stage], command: &'static str) -> Result<(), MemberError> {
    if allowed.contains(&stage) {
        Ok(())
    } else {
        Err(MemberError::WrongStage { command, stage })
    }
}

fn text(value: Option<Text>) -> Option<String> {
    value.map(Text::into_string)
}

fn refer(state: &MemberState, c: ReferMember) -> Decision {
    if let Some(member) = state.member() {
        return Err(MemberError::AlreadyReferred { member });
    }
    if state.version() > 0 {
        return Err(MemberError::AlreadyReferred { member: c.member });
    }
    Ok(vec![MemberReferred {
        member_id: c.member,
        name: c.name.into(),
        email: c.email.map(Into::into),
        phone: c.phone.map(Into::into),
        source: c.source,
        primary_substance: text(c.primary_substance),
        referred_at: c.at,
    }
    .into()])
}

fn complete_intake(state: &MemberState, stage: Stage, c: CompleteIntake) -> Decision {
    require(stage, &[Stage::Referred], "complete intake")?;
    if let Some(referred_at) = state.referred_at().filter(|referred| c.at < *referred) {
        return Err(MemberError::IntakeBeforeReferral { referred_at });
    }
    Ok(vec![IntakeCompleted {
        assessed_by: c.assessed_by.into_string(),
        recommended_level: c.recommended_level,
        completed_at: c.at,
    }
    .into()])
}

fn admit(state: &MemberState, stage: Stage, c: AdmitMember) -> Decision {
    require(stage, &[Stage::Intake], "admit")?;
    if let Some(intake_completed_at) = state.intake_completed_at().filter(|done| c.at < *done) {
        return Err(MemberError::AdmissionBeforeIntake {
            intake_completed_at,
        });
    }
    Ok(vec![MemberAdmitted {
        level_of_care: c.level_of_care,
        primary_counselor: text(c.primary_counselor),
        admitted_at: c.at,
    }
    .into()])
}

fn change_level_of_care(state: &MemberState, stage: Stage, c: ChangeLevelOfCare) -> Decision {
    require(stage, &[Stage::InTreatment], "change level of care")?;
    let Some(from) = state.level_of_care() else {
        return Err(MemberError::WrongStage {
            command: "change level of care",
            stage,
        });
    };
    if from == c.to {
        return Err(MemberError::SameLevelOfCare { level: from });
    }
    if let Some(admitted_at) = state.admitted_at().filter(|admitted| c.at < *admitted) {
        return Err(MemberError::LevelChangeBeforeAdmission { admitted_at });
    }
    not_before_level_change(state, "a change of level of care", c.at)?;
    Ok(vec![LevelOfCareChanged {
        from,
        to: c.to,
        reason: c.reason.into_string(),
        changed_at: c.at,
    }
    .into()])
}

fn give_consent(state: &MemberState, c: GiveConsent) -> Decision {
    if state.consent(c.consent).is_some() {
        return Err(MemberError::DuplicateConsent { consent: c.consent });
    }
    // Without a date, the written event or condition ends it; one saying there is none
    // does only for treatment, payment and health care operations (42 CFR 2.31(a)(6)).
    let ends_by_event = c.expires_on.as_ref().is_some_and(|on| {
        c.kind == ConsentKind::TreatmentPaymentOperations
            || !crate::consent::says_no_expiry(on.as_str())
    });
    if c.expires_at.is_none() && !ends_by_event {
        return Err(ValueError::ConsentWithoutExpiry.into());
    }
    if c.expires_at.is_some_and(|expires| expires <= c.signed_at) {
        return Err(ValueError::ExpiryBeforeSigning.into());
    }
    Ok(vec![ConsentGiven {
        consent_id: c.consent,
        scope: c.scope,
        kind: c.kind,
        recipient: c.recipient.into_string(),
        purpose: c.purpose.into_string(),
        information: c.information.into_string(),
        expires_at: c.expires_at,
        expires_on: text(c.expires_on),
        signed_by: c.signed_by.into_string(),
        signed_at: c.signed_at,
        form_version: c.form_version.into_string(),
    }
    .into()])
}

fn revoke_consent(state: &MemberState, c: RevokeConsent) -> Decision {
    let consent = state
        .consent(c.consent)
        .ok_or(MemberError::UnknownConsent { consent: c.consent })?;
    if consent.revoked_at.is_some() {
        return Err(MemberError::ConsentAlreadyRevoked { consent: c.consent });
    }
    // At the signing instant too: a consent is in force from its signing up to its
    // revocation, so a revocation dated as it was signed would say it never was. (A scope
    // revocation, dated now by the service, revokes whatever is in force now, such a consent
    // included.)
    if c.at <= consent.signed_at {
        return Err(ValueError::RevocationBeforeSigning.into());
    }
    Ok(vec![ConsentRevoked {
        consent_id: c.consent,
        received_at: c.at,
        how_received: c.how_received.into_string(),
    }
    .into()])
}

fn revoke_consents_of_scope(state: &MemberState, c: RevokeConsentsOfScope) -> Decision {
    let events: Vec<MemberEvent> = state
        .consents()
        .iter()
        .filter(|consent| consent.scope == c.scope && consent.in_force_at(c.at))
        .map(|consent| {
            ConsentRevoked {
                consent_id: consent.id,
                received_at: c.at,
                how_received: c.how_received.as_str().to_owned(),
            }
            .into()
        })
        .collect();
    if events.is_empty() {
        return Err(MemberError::NothingToRevoke { scope: c.scope });
    }
    Ok(events)
}

fn set_goal(state: &MemberState, stage: Stage, c: SetGoal) -> Decision {
    require(stage, &[Stage::InTreatment, Stage::Aftercare], "set a goal")?;
    if state.goals().iter().any(|g| g.id == c.goal) {
        return Err(MemberError::DuplicateGoal { goal: c.goal });
    }
    Ok(vec![GoalSet {
        goal_id: c.goal,
        text: c.text.into_string(),
        set_at: c.at,
    }
    .into()])
}

fn achieve_goal(state: &MemberState, c: AchieveGoal) -> Decision {
    let goal = state
        .goals()
        .iter()
        .find(|g| g.id == c.goal)
        .ok_or(MemberError::UnknownGoal { goal: c.goal })?;
    if goal.achieved_at.is_some() {
        return Err(MemberError::GoalAlreadyAchieved { goal: c.goal });
    }
    Ok(vec![GoalAchieved {
        goal_id: c.goal,
        achieved_at: c.at,
    }
    .into()])
}

fn schedule_check_in(state: &MemberState, stage: Stage, c: ScheduleCheckIn) -> Decision {
    require(
        stage,
        &[Stage::InTreatment, Stage::Aftercare, Stage::Alumni],
        "schedule a check-in",
    )?;
    if state.check_ins().iter().any(|x| x.id == c.check_in) {
        return Err(MemberError::DuplicateCheckIn {
            check_in: c.check_in,
        });
    }
    if let Some(admitted_at) = state.admitted_at().filter(|admitted| c.due_at < *admitted) {
        return Err(MemberError::CheckInBeforeAdmission { admitted_at });
    }
    Ok(vec![CheckInScheduled {
        check_in_id: c.check_in,
        due_at: c.due_at,
        channel: c.channel,
    }
    .into()])
}

fn scheduled_check_in(state: &MemberState, check_in: CheckInId) -> Result<&CheckIn, MemberError> {
    let found = state
        .check_ins()
        .iter()
        .find(|x| x.id == check_in)
        .ok_or(MemberError::UnknownCheckIn { check_in })?;
    if found.closed_by_discharge {
        return Err(MemberError::CheckInClosedByDischarge { check_in });
    }
    match found.status {
        CheckInStatus::Scheduled => Ok(found),
        CheckInStatus::Completed => Err(MemberError::CheckInAlreadyCompleted { check_in }),
        CheckInStatus::Missed => Err(MemberError::CheckInAlreadyMissed { check_in }),
    }
}

fn complete_check_in(state: &MemberState, c: CompleteCheckIn) -> Decision {
    scheduled_check_in(state, c.check_in)?;
    Ok(vec![CheckInCompleted {
        check_in_id: c.check_in,
        mood: c.mood,
        craving: c.craving,
        used: c.used,
        completed_at: c.at,
    }
    .into()])
}

fn mark_check_in_missed(state: &MemberState, c: MarkCheckInMissed) -> Decision {
    let check_in = scheduled_check_in(state, c.check_in)?;
    if c.now < check_in.due_at {
        return Err(MemberError::CheckInNotYetDue {
            check_in: c.check_in,
            due_at: check_in.due_at,
        });
    }
    Ok(vec![CheckInMissed {
        check_in_id: c.check_in,
        due_at: check_in.due_at,
    }
    .into()])
}

/// Refuses a step of the episode dated before its current level of care began.
fn not_before_level_change(
    state: &MemberState,
    command: &'static str,
    at: OffsetDateTime,
) -> Result<(), MemberError> {
    match state.level_since() {
        Some(level_since) if at < level_since => Err(MemberError::BeforeLevelChange {
            command,
            level_since,
        }),
        _ => Ok(()),
    }
}

fn discharge(state: &MemberState, stage: Stage, c: DischargeMember) -> Decision {
    require(stage, &[Stage::InTreatment], "discharge")?;
    if let Some(admitted_at) = state.admitted_at().filter(|admitted| c.at < *admitted) {
        return Err(MemberError::DischargeBeforeAdmission { admitted_at });
    }
    not_before_level_change(state, "a discharge", c.at)?;
    let mut events = vec![MemberDischarged {
        reason: c.reason,
        discharged_at: c.at,
    }
    .into()];
    if c.reason == DischargeReason::Completed {
        let member = state.member().ok_or(MemberError::UnknownMember)?;
        let follow_ups =
            plan_follow_ups(member, state.episodes(), c.at, &c.follow_up_offsets_days)?;
        events.push(
            AftercareStarted {
                plan: c.plan,
                follow_ups,
                started_at: c.at,
            }
            .into(),
        );
    }
    Ok(events)
}

fn follow_up(state: &MemberState, follow_up: FollowUpId) -> Result<&FollowUp, MemberError> {
    state
        .follow_ups()
        .iter()
        .find(|f| f.id == follow_up)
        .ok_or(MemberError::UnknownFollowUp { follow_up })
}

fn mark_follow_up_due(state: &MemberState, c: MarkFollowUpDue) -> Decision {
    let found = follow_up(state, c.follow_up)?;
    match found.status {
        FollowUpStatus::Due => Err(MemberError::FollowUpAlreadyDue {
            follow_up: c.follow_up,
        }),
        FollowUpStatus::Completed => Err(MemberError::FollowUpAlreadyCompleted {
            follow_up: c.follow_up,
        }),
        FollowUpStatus::Planned if c.now < found.due_at => Err(MemberError::FollowUpNotYetDue {
            follow_up: c.follow_up,
            due_at: found.due_at,
        }),
        FollowUpStatus::Planned => Ok(vec![fell_due(found)]),
    }
}

/// The event that marks `follow_up` due (by the scheduler, or by a readmission that found it
/// unmarked).
fn fell_due(follow_up: &FollowUp) -> MemberEvent {
    FollowUpDue {
        follow_up_id: follow_up.id,
        day_offset: follow_up.day_offset,
        due_at: follow_up.due_at,
    }
    .into()
}

fn record_follow_up(state: &MemberState, c: RecordFollowUp) -> Decision {
    let found = follow_up(state, c.follow_up)?;
    if found.status == FollowUpStatus::Completed {
        return Err(MemberError::FollowUpAlreadyCompleted {
            follow_up: c.follow_up,
        });
    }
    Ok(vec![FollowUpCompleted {
        follow_up_id: c.follow_up,
        outcome: c.outcome,
        completed_at: c.at,
    }
    .into()])
}

fn enroll_alumni(stage: Stage, c: EnrollAlumni) -> Decision {
    require(stage, &[Stage::Aftercare], "enroll as alumni")?;
    Ok(vec![AlumniEnrolled { enrolled_at: c.at }.into()])
}

fn readmit(state: &MemberState, stage: Stage, c: ReadmitMember) -> Decision {
    require(
        stage,
        &[Stage::Discharged, Stage::Aftercare, Stage::Alumni],
        "readmit",
    )?;
    if let Some((_, discharged_at)) = state.last_discharge().filter(|(_, at)| c.at < *at) {
        return Err(MemberError::ReadmissionBeforeDischarge { discharged_at });
    }
    // The previous episode's open follow-ups (`MemberReadmitted` drops what is left planned):
    // one due after the readmission would find the member back in treatment, so its outcome is
    // known, whether or not the scheduler has marked it due yet (a readmission entered late);
    // one still planned that fell due before it (the scheduler behind) is marked due, as the
    // scheduler would have, and stays for staff: the member was not back yet then.
    let mut events: Vec<MemberEvent> = state
        .follow_ups()
        .iter()
        .filter_map(|f| match f.status {
            FollowUpStatus::Planned | FollowUpStatus::Due if f.due_at > c.at => Some(
                FollowUpCompleted {
                    follow_up_id: f.id,
                    outcome: FollowUpOutcome::Readmitted,
                    completed_at: c.at,
                }
                .into(),
            ),
            FollowUpStatus::Planned => Some(fell_due(f)),
            _ => None,
        })
        .collect();
    events.push(
        MemberReadmitted {
            level_of_care: c.level_of_care,
            primary_counselor: text(c.primary_counselor),
            readmitted_at: c.at,
        }
        .into(),
    );
    Ok(events)
}

fn record_disclosure(state: &MemberState, c: RecordDisclosure) -> Decision {
    if state.disclosures().contains(&c.disclosure) {
        return Err(MemberError::DuplicateDisclosure {
            disclosure: c.disclosure,
        });
    }
    let consent = state
        .consent(c.consent)
        .ok_or(MemberError::UnknownConsent { consent: c.consent })?;
    if consent.form_version == SHORT_FORM_VERSION {
        return Err(MemberError::ConsentNotForDisclosure { consent: c.consent });
    }
    if !consent.in_force_at(c.at) {
        return Err(MemberError::ConsentNotInForce { consent: c.consent });
    }
    if !consent.covers(
        c.recipient.as_str(),
        c.recipient_class.as_ref().map(Text::as_str),
    ) {
        return Err(MemberError::RecipientNotCovered { consent: c.consent });
    }
    Ok(vec![DisclosureMade {
        disclosure_id: c.disclosure,
        consent_id: c.consent,
        recipient: c.recipient.into_string(),
        purpose: c.purpose.into_string(),
        description: c.description.into_string(),
        channel: c.channel.into_string(),
        disclosed_by: c.disclosed_by.into_string(),
        disclosed_at: c.at,
        notice: DISCLOSURE_NOTICE.to_owned(),
    }
    .into()])
}

/// A change of details records the whole set as it stands after it (the last one is all a
/// reader needs).
fn change_details(state: &MemberState, c: ChangeMemberDetails) -> Decision {
    let before = (state.name(), state.email(), state.phone());
    let Some(name) = c.name.map(String::from).or(before.0.map(str::to_owned)) else {
        return Err(MemberError::UnknownMember);
    };
    let email = c.email.apply(before.1);
    let phone = c.phone.apply(before.2);
    if (Some(name.as_str()), email.as_deref(), phone.as_deref()) == before {
        return Ok(vec![]);
    }
    Ok(vec![MemberDetailsChanged {
        name,
        email,
        phone,
        changed_at: c.at,
    }
    .into()])
}

/// Erasure: records are kept for the retention period following the later of the member's
/// last discharge and the last disclosure of their records (the accounting of disclosures
/// must stay available to the member for as long), and never erased while in treatment. A
/// member never admitted and whose records were never disclosed has nothing to keep and is
/// erased at once.
fn erase(state: &MemberState, stage: Stage, c: EraseMember) -> Decision {
    // The reason stays readable once the member's key is gone: it must not say who they were.
    if let Some(naming) = state.named_in(c.reason.as_str()) {
        return Err(ValueError::NamesTheMember {
            field: "reason",
            by: naming.as_str(),
        }
        .into());
    }
    if state.episodes() > 0 {
        require(
            stage,
            &[Stage::Discharged, Stage::Aftercare, Stage::Alumni],
            "erase",
        )?;
    }
    let kept_from = state
        .last_discharge()
        .map(|(_, discharged_at)| discharged_at)
        .max(state.last_disclosed_at());
    if let Some(kept_from) = kept_from {
        // A retention reaching past the calendar's end keeps the records for good: the end
        // of the calendar is the honest "until".
        let until = kept_from
            .checked_add(Duration::days(i64::from(c.retention_days)))
            .unwrap_or_else(|| PrimitiveDateTime::MAX.assume_utc());
        if c.at < until {
            return Err(MemberError::RetentionNotElapsed { until });
        }
    }
    Ok(vec![MemberErased {
        reason: c.reason.into_string(),
        erased_at: c.at,
    }
    .into()])
}

#[cfg(test)]
mod tests;
