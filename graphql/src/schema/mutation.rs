//! Mutations: input → validated domain command → events appended with the stream's expected
//! version → fresh state read back once the projections have applied the write.

use async_graphql::{Context, InputObject, Object, ID};
use clinic_domain::group::Attendance;
use clinic_domain::group::{
    CancelSession, CloseGroup, CorrectAttendance, FormGroup, JoinGroup, LeaveGroup, RecordSession,
    ScheduleSession,
};
use clinic_domain::member::{
    AdmitMember, ChangeLevelOfCare, ChangeMemberDetails, CompleteCheckIn, CompleteIntake,
    DetailChange, DischargeMember, EnrollAlumni, GiveConsent, ReadmitMember, ReferMember,
    RevokeConsentsOfScope, ScheduleCheckIn,
};
use clinic_domain::values::{
    Capacity, Craving, Email, Mood, PersonName, Phone, SessionMinutes, Text, ValueError,
};
use clinic_domain::{
    CheckInId, ConsentId, GroupCommand, GroupId, MemberCommand, MemberId, SessionId,
};
use clinic_domain::{Decider, StoredEvent};
use clinic_infra::commands::{CommandContext, CommandHandler};
use clinic_infra::event_store::StreamId;
use time::OffsetDateTime;

use super::audit::parse_uuid;
use super::enums::{
    AttendanceStatus, ConsentScope, DischargeReason, GroupModel, LevelOfCare, ReferralSource,
};
use super::guard::{roles, RoleGuard};
// Under another name here: resolvers' `member_id` arguments would shadow it.
use super::member::{member_id as member_id_of, FollowUp, Member};
use super::times::{in_calendar, not_in_future};
use super::views::{self, Group, Session};
use super::RequestContext;
use crate::auth::Role;
use crate::error::{ApiError, ApiResult, DomainRefusal};

/// One member's attendance at a session.
#[derive(InputObject, Clone, Debug)]
pub struct AttendanceInput {
    /// The member.
    pub member_id: ID,
    /// How they attended.
    pub status: AttendanceStatus,
}

/// The pipeline's and the groups' mutations.
#[derive(Default)]
pub struct PipelineMutation;

#[Object]
impl PipelineMutation {
    /// Records a referral or inquiry: a new member in stage REFERRED (`at`, when it arrived,
    /// may be in the past; `primarySubstance`, if known, is sealed with the member's other
    /// personal fields and erased with them).
    #[graphql(guard = "RoleGuard::new(\"refer members\", roles::INTAKE)")]
    #[allow(clippy::too_many_arguments)]
    async fn refer_member(
        &self,
        ctx: &Context<'_>,
        name: String,
        email: Option<String>,
        phone: Option<String>,
        source: ReferralSource,
        primary_substance: Option<String>,
        at: Option<OffsetDateTime>,
    ) -> ApiResult<Member> {
        let member = MemberId::new(new_id(ctx, "member", "")?);
        let command = ReferMember {
            member,
            name: PersonName::parse(&name)?,
            email: email.as_deref().map(Email::parse).transpose()?,
            phone: phone.as_deref().map(Phone::parse).transpose()?,
            source: source.into(),
            primary_substance: primary_substance
                .as_deref()
                .map(|substance| Text::parse("primary substance", substance))
                .transpose()?,
            at: not_in_future("at", at)?,
        };
        run_member(ctx, member, None, command).await
    }

    /// Changes how the clinic knows and reaches a member, at any stage: give only what
    /// changes; `removeEmail: true` or `removePhone: true` removes one (an argument left out
    /// or null keeps its detail as it is). Emails not yet sent go to the new address, or are
    /// cancelled when it is removed. A change that changes nothing records nothing; an erased
    /// member's details cannot be changed (`CONFLICT`).
    #[graphql(guard = "RoleGuard::new(\"change member details\", roles::INTAKE)")]
    #[allow(clippy::too_many_arguments)]
    async fn change_member_details(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        name: Option<String>,
        email: Option<String>,
        phone: Option<String>,
        remove_email: Option<bool>,
        remove_phone: Option<bool>,
        expected_version: Option<i64>,
    ) -> ApiResult<Member> {
        let command = ChangeMemberDetails {
            name: name.as_deref().map(PersonName::parse).transpose()?,
            email: detail_change("email", email, remove_email, Email::parse)?,
            phone: detail_change("phone", phone, remove_phone, Phone::parse)?,
            at: OffsetDateTime::now_utc(),
        };
        run_member(ctx, member_id_of(&member_id)?, expected_version, command).await
    }

    /// Records the intake assessment (`at` may be in the past, not before the referral).
    #[graphql(guard = "RoleGuard::new(\"complete intakes\", roles::INTAKE)")]
    async fn complete_intake(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        recommended_level: LevelOfCare,
        expected_version: Option<i64>,
        at: Option<OffsetDateTime>,
    ) -> ApiResult<Member> {
        let request = super::request(ctx)?;
        let command = CompleteIntake {
            assessed_by: Text::parse("assessed by", &request.staff.sub)?,
            recommended_level: recommended_level.into(),
            at: not_in_future("at", at)?,
        };
        run_member(ctx, member_id_of(&member_id)?, expected_version, command).await
    }

    /// Admits an assessed member to a level of care (`at` may be in the past).
    #[graphql(guard = "RoleGuard::new(\"admit members\", roles::CLINICAL)")]
    async fn admit_member(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        level_of_care: LevelOfCare,
        at: Option<OffsetDateTime>,
        primary_counselor: Option<String>,
        expected_version: Option<i64>,
    ) -> ApiResult<Member> {
        let command = AdmitMember {
            level_of_care: level_of_care.into(),
            primary_counselor: Some(counselor(ctx, primary_counselor)?),
            at: not_in_future("at", at)?,
        };
        run_member(ctx, member_id_of(&member_id)?, expected_version, command).await
    }

    /// Steps a member in treatment up or down to another level of care (`at` may be in the
    /// past, not before the admission).
    #[graphql(guard = "RoleGuard::new(\"change levels of care\", roles::CLINICAL)")]
    async fn change_level_of_care(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        to: LevelOfCare,
        reason: String,
        at: Option<OffsetDateTime>,
        expected_version: Option<i64>,
    ) -> ApiResult<Member> {
        let command = ChangeLevelOfCare {
            to: to.into(),
            reason: Text::parse("reason", &reason)?,
            at: not_in_future("at", at)?,
        };
        run_member(ctx, member_id_of(&member_id)?, expected_version, command).await
    }

    /// Readmits a discharged member, one in aftercare or an alumnus to treatment (a relapse,
    /// a step back up): back in stage IN_TREATMENT, their history kept (`at` may be in the
    /// past, not before the discharge). Follow-ups of the previous episode due after `at` are
    /// recorded with the outcome READMITTED.
    #[graphql(guard = "RoleGuard::new(\"readmit members\", roles::CLINICAL)")]
    async fn readmit_member(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        level_of_care: LevelOfCare,
        at: Option<OffsetDateTime>,
        primary_counselor: Option<String>,
        expected_version: Option<i64>,
    ) -> ApiResult<Member> {
        let command = ReadmitMember {
            level_of_care: level_of_care.into(),
            primary_counselor: Some(counselor(ctx, primary_counselor)?),
            at: not_in_future("at", at)?,
        };
        run_member(ctx, member_id_of(&member_id)?, expected_version, command).await
    }

    /// Records the member's consent to email outreach (short form of a 42 CFR 2.31 consent).
    #[graphql(guard = "RoleGuard::new(\"record consent\", roles::INTAKE)")]
    async fn give_consent(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        scope: ConsentScope,
    ) -> ApiResult<Member> {
        let member = member_id_of(&member_id)?;
        let command = GiveConsent::short_form(
            ConsentId::new(new_id(ctx, "consent", &member.to_string())?),
            scope.into(),
            OffsetDateTime::now_utc(),
        );
        run_member(ctx, member, None, command).await
    }

    /// Records that the member revoked every consent of `scope` in force.
    #[graphql(guard = "RoleGuard::new(\"record consent\", roles::INTAKE)")]
    async fn revoke_consent(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        scope: ConsentScope,
    ) -> ApiResult<Member> {
        let command = RevokeConsentsOfScope {
            scope: scope.into(),
            how_received: Text::parse("how received", "recorded by staff")?,
            at: OffsetDateTime::now_utc(),
        };
        run_member(ctx, member_id_of(&member_id)?, None, command).await
    }

    /// Schedules a check-in (`channel`: how it is to be held, a call unless said); a due time
    /// in the past becomes CheckInMissed at the next tick, and one before the member's
    /// admission is refused. Like every time a client gives, `dueAt` falls in the years 1900 to
    /// 2199 (UTC).
    #[graphql(guard = "RoleGuard::new(\"schedule check-ins\", roles::CLINICAL)")]
    async fn schedule_check_in(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        due_at: OffsetDateTime,
        channel: Option<super::enums::CheckInChannel>,
    ) -> ApiResult<Member> {
        let member = member_id_of(&member_id)?;
        let command = ScheduleCheckIn {
            check_in: CheckInId::new(new_id(ctx, "check-in", &member.to_string())?),
            due_at: in_calendar("dueAt", due_at)?,
            channel: channel.map_or(clinic_domain::values::CheckInChannel::Call, Into::into),
            at: OffsetDateTime::now_utc(),
        };
        run_member(ctx, member, None, command).await
    }

    /// Records a completed check-in (mood 1-5, craving 0-10).
    #[graphql(guard = "RoleGuard::new(\"record check-ins\", roles::CLINICAL)")]
    async fn complete_check_in(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        check_in_id: ID,
        mood: i32,
        craving: i32,
        used: bool,
    ) -> ApiResult<Member> {
        let command = CompleteCheckIn {
            check_in: CheckInId::new(parse_uuid(&check_in_id)?),
            mood: Mood::new(i64::from(mood))?,
            craving: Craving::new(i64::from(craving))?,
            used,
            at: OffsetDateTime::now_utc(),
        };
        run_member(ctx, member_id_of(&member_id)?, None, command).await
    }

    /// Discharges a member in treatment; a completed discharge starts aftercare with
    /// follow-ups at days 7, 30, 90, 180 and 365 (or the days `CLINIC_FOLLOW_UP_DAYS` sets).
    /// `at` may be in the past.
    #[graphql(guard = "RoleGuard::new(\"discharge members\", roles::CLINICAL)")]
    async fn discharge_member(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        reason: DischargeReason,
        at: Option<OffsetDateTime>,
        expected_version: Option<i64>,
    ) -> ApiResult<Member> {
        let command = DischargeMember {
            follow_up_offsets_days: super::services(ctx)?.rules.follow_up_days().to_vec(),
            ..DischargeMember::new(reason.into(), not_in_future("at", at)?)
        };
        run_member(ctx, member_id_of(&member_id)?, expected_version, command).await
    }

    /// Enrols a member in aftercare into the alumni programme.
    #[graphql(guard = "RoleGuard::new(\"enrol alumni\", roles::CLINICAL)")]
    async fn enroll_alumni(&self, ctx: &Context<'_>, member_id: ID) -> ApiResult<Member> {
        let command = EnrollAlumni {
            at: OffsetDateTime::now_utc(),
        };
        run_member(ctx, member_id_of(&member_id)?, None, command).await
    }

    /// Records the outcome of an alumni follow-up.
    #[graphql(guard = "RoleGuard::new(\"record follow-ups\", roles::CLINICAL)")]
    async fn record_follow_up(
        &self,
        ctx: &Context<'_>,
        follow_up_id: ID,
        outcome: super::enums::FollowUpOutcome,
    ) -> ApiResult<FollowUp> {
        let follow_up = clinic_domain::FollowUpId::new(parse_uuid(&follow_up_id)?);
        let member = views::member_of_follow_up(ctx, follow_up)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("follow-up {follow_up} not found")))?;
        let command = clinic_domain::member::RecordFollowUp {
            follow_up,
            outcome: outcome.into(),
            at: OffsetDateTime::now_utc(),
        };
        let position = execute_member(ctx, member, None, command.into()).await?;
        Ok(views::follow_up_after_write(ctx, follow_up, position).await?)
    }

    /// Forms a therapy group (capacity 1-50, default 12). `facilitator` is the staff `sub`
    /// who runs it: only they (and clinicians, admins) record its sessions. `formedAt` (now
    /// unless said; not in the future) dates it: a group that met before it was entered here
    /// takes its first meeting's date, since no join or session may be dated before it.
    #[graphql(guard = "RoleGuard::new(\"form groups\", roles::CLINICAL)")]
    #[allow(clippy::too_many_arguments)]
    async fn form_group(
        &self,
        ctx: &Context<'_>,
        name: String,
        model: GroupModel,
        capacity: Option<i32>,
        facilitator: Option<String>,
        schedule: Option<String>,
        alumni: Option<bool>,
        online: Option<bool>,
        formed_at: Option<OffsetDateTime>,
    ) -> ApiResult<Group> {
        let group = GroupId::new(new_id(ctx, "group", "")?);
        let command = FormGroup {
            group,
            name: Text::parse("group name", &name)?,
            model: model.into(),
            facilitator: facilitator
                .as_deref()
                .map(|f| Text::parse("facilitator", f))
                .transpose()?,
            capacity: match capacity {
                Some(n) => Capacity::new(i64::from(n))?,
                None => Capacity::default(),
            },
            schedule: schedule
                .as_deref()
                .map(|s| Text::parse("schedule", s))
                .transpose()?,
            alumni: alumni.unwrap_or(false),
            online: online.unwrap_or(false),
            at: not_in_future("formedAt", formed_at)?,
        };
        run_group(ctx, group, None, command).await
    }

    /// Puts a member on a group's roster (while admitted, or as alumni for an alumni group;
    /// never twice; never beyond capacity). `at` may be in the past (a member who joined
    /// before the session being recorded), not before the member's admission, nor before a
    /// session already recorded.
    #[graphql(guard = "RoleGuard::new(\"manage rosters\", roles::CLINICAL)")]
    async fn join_group(
        &self,
        ctx: &Context<'_>,
        group_id: ID,
        member_id: ID,
        expected_version: Option<i64>,
        at: Option<OffsetDateTime>,
    ) -> ApiResult<Group> {
        let services = super::services(ctx)?;
        let request = super::request(ctx)?;
        let member = member_id_of(&member_id)?;
        // The member's stage is a fact of another stream, read now and put into the command.
        let member_state = services
            .members
            .load(&request.staff.clinic, &member_stream(member))
            .await
            .map_err(ApiError::from)?;
        // No such member in the caller's clinic (a mistyped id, a group's id, another clinic's
        // member): not found, as for any other member command, rather than "not admitted".
        if member_state.member().is_none() {
            return Err(ApiError::NotFound(
                clinic_domain::MemberError::UnknownMember.to_string(),
            ));
        }
        let at = not_in_future("at", at)?;
        if member_state
            .admitted_at()
            .is_some_and(|admitted| at < admitted)
        {
            return Err(ApiError::BadInput(
                "`at` must not be before the member's admission".into(),
            ));
        }
        let command = JoinGroup {
            member,
            member_stage: member_state.group_eligibility(),
            at,
        };
        run_group(ctx, group_id_of(&group_id)?, expected_version, command).await
    }

    /// Takes a member off a group's roster (`at` may be in the past, not before a recorded
    /// session that lists them).
    #[graphql(guard = "RoleGuard::new(\"manage rosters\", roles::CLINICAL)")]
    async fn leave_group(
        &self,
        ctx: &Context<'_>,
        group_id: ID,
        member_id: ID,
        reason: String,
        at: Option<OffsetDateTime>,
    ) -> ApiResult<Group> {
        let command = LeaveGroup {
            member: member_id_of(&member_id)?,
            reason: Text::parse("reason", &reason)?,
            at: not_in_future("at", at)?,
        };
        run_group(ctx, group_id_of(&group_id)?, None, command).await
    }

    /// Closes a group for good: no more joins or sessions; its history stays (attendance may
    /// still be corrected).
    #[graphql(guard = "RoleGuard::new(\"close groups\", roles::CLINICAL)")]
    async fn close_group(
        &self,
        ctx: &Context<'_>,
        group_id: ID,
        reason: String,
        expected_version: Option<i64>,
    ) -> ApiResult<Group> {
        let command = CloseGroup {
            reason: Text::parse("reason", &reason)?,
            at: OffsetDateTime::now_utc(),
        };
        run_group(ctx, group_id_of(&group_id)?, expected_version, command).await
    }

    /// Plans a session (status `scheduled`); `recordSession` with its id records it held,
    /// `cancelSession` cancels it.
    #[graphql(guard = "RoleGuard::new(\"schedule sessions\", roles::SESSIONS)")]
    async fn schedule_session(
        &self,
        ctx: &Context<'_>,
        group_id: ID,
        starts_at: OffsetDateTime,
        topic: String,
    ) -> ApiResult<Session> {
        let group = group_id_of(&group_id)?;
        let session = SessionId::new(new_id(ctx, "session", &group.to_string())?);
        let command = ScheduleSession {
            session,
            starts_at: in_calendar("startsAt", starts_at)?,
            topic: Text::parse("topic", &topic)?,
            at: OffsetDateTime::now_utc(),
        };
        run_session(ctx, group, session, command.into()).await
    }

    /// Cancels a scheduled session (one already held cannot be: correct its attendance).
    #[graphql(guard = "RoleGuard::new(\"cancel sessions\", roles::SESSIONS)")]
    async fn cancel_session(
        &self,
        ctx: &Context<'_>,
        group_id: ID,
        session_id: ID,
        reason: String,
    ) -> ApiResult<Session> {
        let group = group_id_of(&group_id)?;
        let session = SessionId::new(parse_uuid(&session_id)?);
        let command = CancelSession {
            session,
            reason: Text::parse("reason", &reason)?,
            at: OffsetDateTime::now_utc(),
        };
        run_session(ctx, group, session, command.into()).await
    }

    /// Records a session held, with the attendance of exactly the members on the roster at
    /// `heldAt` (not in the future). `sessionId` records a scheduled session; without it the
    /// session is new.
    #[graphql(guard = "RoleGuard::new(\"record sessions\", roles::SESSIONS)")]
    #[allow(clippy::too_many_arguments)]
    async fn record_session(
        &self,
        ctx: &Context<'_>,
        group_id: ID,
        topic: String,
        held_at: OffsetDateTime,
        attendance: Vec<AttendanceInput>,
        duration_minutes: Option<i32>,
        session_id: Option<ID>,
    ) -> ApiResult<Session> {
        let group = group_id_of(&group_id)?;
        let held_at = not_in_future("heldAt", Some(held_at))?;
        let session = match &session_id {
            Some(id) => SessionId::new(parse_uuid(id)?),
            None => SessionId::new(new_id(ctx, "session", &group.to_string())?),
        };
        let attendance = attendance
            .iter()
            .map(|a| {
                Ok(Attendance {
                    member_id: member_id_of(&a.member_id)?,
                    status: a.status.into(),
                })
            })
            .collect::<ApiResult<Vec<_>>>()?;
        let command = RecordSession {
            session,
            planned: session_id.is_some(),
            held_at,
            topic: Text::parse("topic", &topic)?,
            duration: match duration_minutes {
                Some(n) => SessionMinutes::new(i64::from(n))?,
                None => SessionMinutes::default(),
            },
            attendance,
        };
        run_session(ctx, group, session, command.into()).await
    }

    /// Corrects one member's attendance at a held session (never overwrites: the correction
    /// is an event of its own with its reason).
    #[graphql(guard = "RoleGuard::new(\"correct attendance\", roles::SESSIONS)")]
    async fn correct_attendance(
        &self,
        ctx: &Context<'_>,
        group_id: ID,
        session_id: ID,
        member_id: ID,
        status: AttendanceStatus,
        reason: String,
    ) -> ApiResult<Session> {
        let group = group_id_of(&group_id)?;
        let session = SessionId::new(parse_uuid(&session_id)?);
        let command = CorrectAttendance {
            session,
            member: member_id_of(&member_id)?,
            to: status.into(),
            reason: Text::parse("reason", &reason)?,
            at: OffsetDateTime::now_utc(),
        };
        run_session(ctx, group, session, command.into()).await
    }

    /// Puts an undeliverable email (`deadLetters`) back in the queue once what killed it is
    /// fixed (admins): its attempts start again, and consent, erasure and its 14-day window
    /// are checked again before it goes. `NOT_FOUND` unless it is a dead letter of the clinic
    /// still inside its 14-day window (an older one could only be cancelled as stale).
    #[graphql(guard = "RoleGuard::new(\"requeue emails\", roles::ADMIN)")]
    async fn requeue_dead_letter(&self, ctx: &Context<'_>, id: ID) -> ApiResult<ID> {
        let (services, request) = (super::services(ctx)?, super::request(ctx)?);
        let row = parse_uuid(&id)?;
        let requeued =
            clinic_infra::outbox::requeue_dead_letter(&services.pool, &request.staff.clinic, row)
                .await
                .map_err(ApiError::internal)?;
        if requeued {
            Ok(id)
        } else {
            Err(ApiError::NotFound(format!("dead letter {row} not found")))
        }
    }
}

/// Runs a command about one session of `group` (a facilitator: of a group they run); answers
/// the session as the read models show it after the write.
/// The members a group command names: whose records its answer would show.
fn members_named(command: &GroupCommand) -> Vec<MemberId> {
    match command {
        GroupCommand::JoinGroup(join) => vec![join.member],
        GroupCommand::LeaveGroup(leave) => vec![leave.member],
        GroupCommand::RecordSession(session) => {
            session.attendance.iter().map(|a| a.member_id).collect()
        }
        GroupCommand::CorrectAttendance(correction) => vec![correction.member],
        GroupCommand::FormGroup(_)
        | GroupCommand::ScheduleSession(_)
        | GroupCommand::CancelSession(_)
        | GroupCommand::CloseGroup(_) => Vec::new(),
    }
}

async fn run_session(
    ctx: &Context<'_>,
    group: GroupId,
    session: SessionId,
    command: GroupCommand,
) -> ApiResult<Session> {
    ensure_may_record_sessions(ctx, group).await?;
    super::member::refuse_unreadable_answer(ctx, &members_named(&command)).await?;
    let position = execute_group(ctx, group, None, command).await?;
    views::session_after_write(ctx, group, session, position).await
}

/// The primary counselor a client names for an episode of treatment, or the staff member
/// admitting.
fn counselor(ctx: &Context<'_>, named: Option<String>) -> ApiResult<Text> {
    let named = match named {
        Some(named) => named,
        None => super::request(ctx)?.staff.sub.clone(),
    };
    Ok(Text::parse("primary counselor", &named)?)
}

/// A facilitator records sessions of their own groups only.
async fn ensure_may_record_sessions(ctx: &Context<'_>, group: GroupId) -> ApiResult<()> {
    let services = super::services(ctx)?;
    let request = super::request(ctx)?;
    if request.staff.role != Role::Facilitator {
        return Ok(());
    }
    let state = services
        .groups
        .load(&request.staff.clinic, &group_stream(group))
        .await?;
    let facilitates = state
        .profile()
        .and_then(|p| p.facilitator.as_deref())
        .is_some_and(|f| f == request.staff.sub);
    if facilitates {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "record sessions of a group you do not facilitate",
        ))
    }
}

pub(super) fn member_stream(member: MemberId) -> StreamId {
    StreamId::of("member", member.as_uuid())
}

fn group_stream(group: GroupId) -> StreamId {
    StreamId::of("group", group.as_uuid())
}

fn group_id_of(id: &ID) -> ApiResult<GroupId> {
    parse_uuid(id).map(GroupId::new)
}

/// The id of something new a mutation creates (a member, a group, a session of `within`...):
/// derived from the mutation's idempotency key ([`command_context`]) when the request has one,
/// so a retry names the same thing, finds it recorded and answers with it, instead of creating
/// a second one; and from what it is created in, so one key never names a session in two
/// groups. Random without a key.
pub(super) fn new_id(ctx: &Context<'_>, what: &str, within: &str) -> ApiResult<uuid::Uuid> {
    Ok(keyed_context(ctx)?.new_id(&format!("{what}/{within}")))
}

/// The command context of the mutation field `ctx` resolves. Its idempotency key is the
/// request's `Idempotency-Key` scoped to the caller and to the field's place in the request
/// (its alias): the key is the caller's, for one request, so another caller reusing it, or two
/// aliased mutations of one request, are told apart from a retry, both in the event ids the
/// store compares and in the ids of what they create. With a key it also carries the request's
/// digest, which tells a retry from another request sent with the same key.
pub(super) fn command_context(ctx: &Context<'_>) -> ApiResult<CommandContext> {
    let mut context = keyed_context(ctx)?;
    if context.idempotency_key.is_some() {
        context.request_digest = Some(super::request_digest::of(ctx)?);
    }
    Ok(context)
}

/// [`command_context`] without the request's digest: all the ids of new things need.
fn keyed_context(ctx: &Context<'_>) -> ApiResult<CommandContext> {
    let request: &RequestContext = super::request(ctx)?;
    let field = ctx
        .path_node
        .map(|path| path.to_string())
        .unwrap_or_default();
    Ok(CommandContext {
        clinic: request.staff.clinic.clone(),
        actor: request.staff.sub.clone(),
        correlation_id: request.correlation_id,
        idempotency_key: request
            .idempotency_key
            .as_ref()
            .map(|key| format!("{key}/{}/{field}", request.staff.sub)),
        request_digest: None,
    })
}

fn expected(version: Option<i64>) -> ApiResult<Option<u64>> {
    version
        .map(|v| {
            u64::try_from(v)
                .map_err(|_| ApiError::BadInput("`expectedVersion` must not be negative".into()))
        })
        .transpose()
}

/// Runs a command through `handler` on `stream`; returns the log position a reader must reach
/// to see it (0 when the decision recorded nothing).
async fn execute<D>(
    ctx: &Context<'_>,
    handler: &CommandHandler<D>,
    stream: StreamId,
    expected_version: Option<i64>,
    command: D::Command,
) -> ApiResult<i64>
where
    D: Decider,
    D::Event: StoredEvent,
    D::Command: Clone,
    D::Error: DomainRefusal,
{
    let executed = handler
        .execute(
            &command_context(ctx)?,
            &stream,
            expected(expected_version)?,
            command,
        )
        .await?;
    Ok(executed.append.map_or(0, |a| a.last_position()))
}

/// Runs a member command; returns the log position a reader must reach to see it.
async fn execute_member(
    ctx: &Context<'_>,
    member: MemberId,
    expected_version: Option<i64>,
    command: MemberCommand,
) -> ApiResult<i64> {
    let handler = &super::services(ctx)?.members;
    execute(
        ctx,
        handler,
        member_stream(member),
        expected_version,
        command,
    )
    .await
}

/// What a change of details does to `field`: set to the value given (validated), removed when
/// asked, else kept. Removal is a flag of its own rather than an explicit null: a variable
/// declared but not sent arrives as null, and must not remove anything.
fn detail_change<T>(
    field: &str,
    given: Option<String>,
    remove: Option<bool>,
    parse: impl FnOnce(&str) -> Result<T, ValueError>,
) -> ApiResult<DetailChange<T>> {
    match (given, remove.unwrap_or(false)) {
        (Some(_), true) => Err(ApiError::BadInput(format!(
            "give a new {field} or remove it, not both"
        ))),
        (Some(value), false) => Ok(DetailChange::Set(parse(&value)?)),
        (None, true) => Ok(DetailChange::Remove),
        (None, false) => Ok(DetailChange::Keep),
    }
}

async fn run_member(
    ctx: &Context<'_>,
    member: MemberId,
    expected_version: Option<i64>,
    command: impl Into<MemberCommand>,
) -> ApiResult<Member> {
    let command = command.into();
    super::member::refuse_unreadable_answer(ctx, &[member]).await?;
    let position = execute_member(ctx, member, expected_version, command).await?;
    views::member_after_write(ctx, member, position).await
}

/// Runs a group command; returns the log position a reader must reach to see it.
async fn execute_group(
    ctx: &Context<'_>,
    group: GroupId,
    expected_version: Option<i64>,
    command: GroupCommand,
) -> ApiResult<i64> {
    let handler = &super::services(ctx)?.groups;
    execute(ctx, handler, group_stream(group), expected_version, command).await
}

async fn run_group(
    ctx: &Context<'_>,
    group: GroupId,
    expected_version: Option<i64>,
    command: impl Into<GroupCommand>,
) -> ApiResult<Group> {
    let command = command.into();
    super::member::refuse_unreadable_answer(ctx, &members_named(&command)).await?;
    let position = execute_group(ctx, group, expected_version, command).await?;
    views::group_after_write(ctx, group, position).await
}
