//! Members as staff see them: `Member` and its check-ins and follow-ups. A `Member` carries
//! everything its fields show, loaded in batches by whoever produced it (a page of the member
//! list, a roster, time travel), so a dashboard is a bounded number of round trips whatever
//! its size. Only `history`, `consents`, `emails` and `contact` read on their own (the log, or
//! the outbox: a member's record read where it is kept), each weighed as a nested list.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, SelectionField, SimpleObject, ID};
use clinic_domain::engagement::is_at_risk;
use clinic_domain::member::MemberEvent;
use clinic_domain::{MemberId, MemberState};
use clinic_infra::event_store::{RecordedEvent, StreamId};
use clinic_infra::keyring::KeySet;
use time::OffsetDateTime;

use super::audit::{parse_uuid, EventConnection};
use super::enums::{CheckInStatus, DataCategory, FollowUpOutcome, LevelOfCare, Stage};
use super::guard::roles;
use super::{request, scalars, services};
use crate::auth::Role;
use crate::error::{ApiError, ApiResult};

/// The name shown for a member whose personal data was erased: what the log's sealed fields
/// read as once the key is gone, and what the read models hold.
pub const ERASED_NAME: &str = clinic_infra::codec::ERASED;

/// A scheduled check-in.
#[derive(SimpleObject, Clone, Debug)]
pub struct CheckIn {
    /// Its id.
    pub id: ID,
    /// When it is due.
    pub due_at: OffsetDateTime,
    /// Scheduled, completed or missed.
    pub status: CheckInStatus,
    /// Still scheduled when the member was discharged: closed with the episode, so it will
    /// never be marked missed.
    pub closed_by_discharge: bool,
}

/// An alumni follow-up.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct FollowUp {
    /// Its id.
    pub id: ID,
    /// Days after discharge.
    pub day_offset: i32,
    /// When it falls due.
    pub due_at: OffsetDateTime,
    /// What it found, once recorded.
    pub outcome: Option<FollowUpOutcome>,
    #[graphql(skip)]
    pub member: Option<Arc<MemberView>>,
    #[graphql(skip)]
    pub member_id: MemberId,
}

#[ComplexObject]
impl FollowUp {
    /// The alumnus.
    async fn member(&self, ctx: &Context<'_>) -> ApiResult<Member> {
        if let Some(view) = &self.member {
            return Ok(Member(view.clone()));
        }
        // Not loaded with the follow-up (a mutation's answer): a read of its own.
        let member = super::views::member_by_id(ctx, self.member_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("member {} not found", self.member_id)))?;
        super::views::log_member_reads(
            ctx,
            &[self.member_id],
            super::views::Read::Record,
            ctx.look_ahead(),
            false,
        )
        .await?;
        Ok(member)
    }
}

/// Everything a `Member` shows.
#[derive(Clone, Debug)]
pub struct MemberView {
    /// The member.
    pub id: MemberId,
    /// Their name, or [`ERASED_NAME`].
    pub name: String,
    /// Their stage.
    pub stage: clinic_domain::values::Stage,
    /// Their level of care while in treatment.
    pub level_of_care: Option<clinic_domain::values::LevelOfCare>,
    /// Their stream's version (for `expectedVersion`).
    pub version: i64,
    /// Sessions attended (present or late) in the 7 days before the view's instant.
    pub sessions_attended_last_7_days: u32,
    /// Scheduled check-ins missed in a row.
    pub consecutive_missed_check_ins: u32,
    /// Whether their personal data was erased.
    pub erased: bool,
    /// Their check-ins, follow-ups and groups as of a past instant (time travel); `None` for
    /// a live member, whose lists are loaded (in batches) only when a query asks for them.
    pub past: Option<Past>,
}

/// The nested lists of a member as of a past instant.
#[derive(Clone, Debug)]
pub struct Past {
    /// Their check-ins then.
    pub check_ins: Vec<CheckIn>,
    /// Their follow-ups then.
    pub follow_ups: Vec<FollowUp>,
    /// The groups they were on (as far as the caller knows).
    pub groups: Vec<clinic_domain::GroupId>,
    /// Their consents as recorded by then, each in force or not then.
    pub consents: Vec<super::privacy::Consent>,
    /// How they could be reached then.
    pub contact: Contact,
}

/// How the clinic reaches a member: the address and number on file (from the referral or the
/// last change of details; none after an erasure, and `(erased)`, as the name, in time travel
/// to an instant before it, whose sealed values no key opens any more).
#[derive(Clone, Debug, SimpleObject)]
pub struct Contact {
    /// Their email address, if any.
    pub email: Option<String>,
    /// Their phone number, if any.
    pub phone: Option<String>,
}

impl Contact {
    /// The details `state` holds now.
    pub fn of(state: &MemberState) -> Self {
        Self {
            email: state.email().map(str::to_owned),
            phone: state.phone().map(str::to_owned),
        }
    }
}

/// A member of the clinic.
#[derive(Clone, Debug)]
pub struct Member(pub Arc<MemberView>);

/// A field of `Member` beyond the profile, and who may read it. The field's resolver checks
/// it ([`Member::require`]), and so does a member mutation before it writes
/// ([`refuse_unreadable_answer`]): otherwise a write whose answer selects such a field would be
/// stored and then answered `FORBIDDEN`, where service.md says a refusal writes nothing.
pub(super) struct Restricted {
    /// The GraphQL field.
    field: &'static str,
    /// What the refusal says the role may not do.
    pub what: &'static str,
    /// Who may read it.
    pub roles: &'static [Role],
    /// What a read of it is logged as.
    pub category: DataCategory,
}

/// `atRisk`: counts every group, so clinical readers only (a facilitator sees their own
/// groups' attendance).
pub(super) const AT_RISK: Restricted = Restricted {
    field: "atRisk",
    what: "read attendance across groups",
    roles: roles::CLINICAL_READ,
    category: DataCategory::Attendance,
};
/// `sessionsAttendedLast7Days`: as `atRisk`.
const SESSIONS_ATTENDED: Restricted = Restricted {
    field: "sessionsAttendedLast7Days",
    ..AT_RISK
};
/// `consecutiveMissedCheckIns`.
pub(super) const MISSED_CHECK_INS: Restricted = Restricted {
    field: "consecutiveMissedCheckIns",
    what: "read check-ins",
    roles: roles::CLINICAL_READ,
    category: DataCategory::CheckIns,
};
/// `checkIns`.
const CHECK_INS: Restricted = Restricted {
    field: "checkIns",
    ..MISSED_CHECK_INS
};
/// `followUps`.
const FOLLOW_UPS: Restricted = Restricted {
    field: "followUps",
    what: "read follow-ups",
    roles: roles::CLINICAL_READ,
    category: DataCategory::Outcomes,
};
/// `groups`: a member's groups are their treatment, beyond intake's profiles.
pub(super) const GROUPS: Restricted = Restricted {
    field: "groups",
    what: "read a member's groups",
    roles: roles::SESSION_READ,
    category: DataCategory::Attendance,
};
/// `history`: auditors, admins and the clinicians who treat them.
const HISTORY: Restricted = Restricted {
    field: "history",
    what: "read a member's history",
    roles: roles::HISTORY,
    category: DataCategory::History,
};
/// `consents`.
pub(super) const CONSENTS: Restricted = Restricted {
    field: "consents",
    what: "read consents",
    roles: roles::CONSENTS,
    category: DataCategory::Consents,
};
/// `contact`: who refers and changes a member's details reads them (not facilitators, nor
/// auditors, who read the history).
const CONTACT: Restricted = Restricted {
    field: "contact",
    what: "read contact details",
    roles: roles::INTAKE,
    category: DataCategory::Profile,
};
/// `emails`: what was sent under which consent.
pub(super) const EMAILS: Restricted = Restricted {
    field: "emails",
    what: "read a member's emails",
    ..CONSENTS
};

const RESTRICTED: [&Restricted; 10] = [
    &CONTACT,
    &AT_RISK,
    &SESSIONS_ATTENDED,
    &MISSED_CHECK_INS,
    &CHECK_INS,
    &FOLLOW_UPS,
    &GROUPS,
    &HISTORY,
    &CONSENTS,
    &EMAILS,
];

/// Refuses a mutation, before it writes, whose answer selects, at any depth, a field of a member
/// the caller may not read (intake asking `referMember { atRisk }`, a facilitator
/// `recordSession { attendance { member { checkIns } } }`). The refusal is logged as a denied
/// read of the records of `members` (the members the command names) that exist in the
/// caller's clinic: a referral's member does not yet, nor does a mistyped id.
pub(super) async fn refuse_unreadable_answer(
    ctx: &Context<'_>,
    members: &[MemberId],
) -> ApiResult<()> {
    let role = request(ctx)?.staff.role;
    let Some(refused) = first_refused(ctx.field(), role) else {
        return Ok(());
    };
    let existing: Vec<MemberId> = super::views::members_by_ids(ctx, members)
        .await?
        .iter()
        .map(|member| member.0.id)
        .collect();
    super::views::log_reads(
        ctx,
        &existing,
        super::views::Read::Record(refused.category),
        false,
    )
    .await?;
    Err(ApiError::Forbidden(refused.what))
}

/// The first restricted field `role` may not read under `field`. By name: the restricted
/// names are fields of `Member` only, wherever a member is reached from. A field the request
/// skips (`@skip(if: true)`, `@include(if: false)`) is not read, so not refused.
fn first_refused(field: SelectionField<'_>, role: Role) -> Option<&'static Restricted> {
    field
        .selection_set()
        .filter(|selected| !skipped(selected))
        .find_map(|selected| {
            RESTRICTED
                .iter()
                .copied()
                .find(|r| r.field == selected.name() && !r.roles.contains(&role))
                .or_else(|| first_refused(selected, role))
        })
}

/// Whether the request's own directives leave `field` out of the answer. (A directive on a
/// fragment spread is not seen here: such a field is checked, so refused if restricted.)
fn skipped(field: &SelectionField<'_>) -> bool {
    let Ok(directives) = field.directives() else {
        return false;
    };
    directives.iter().any(|directive| {
        let condition = directive
            .arguments
            .iter()
            .find(|(name, _)| name.node.as_str() == "if")
            .map(|(_, value)| &value.node);
        matches!(
            (directive.name.node.as_str(), condition),
            ("skip", Some(async_graphql::Value::Boolean(true)))
                | ("include", Some(async_graphql::Value::Boolean(false)))
        )
    })
}

impl Member {
    /// The role check of a read of `field` of this member; a refusal is logged as a denied
    /// read of its category.
    async fn require(&self, ctx: &Context<'_>, field: &Restricted) -> ApiResult<()> {
        super::guard::require_reading(ctx, field.what, field.roles, self.0.id, field.category).await
    }

    /// The check of a nested clinical record (check-ins, outcomes), access-logged either way
    /// (the member list logged only the profile).
    async fn read_record(&self, ctx: &Context<'_>, field: &Restricted) -> ApiResult<()> {
        self.require(ctx, field).await?;
        super::views::log_reads(
            ctx,
            &[self.0.id],
            super::views::Read::Record(field.category),
            true,
        )
        .await
    }
}

#[async_graphql::Object]
impl Member {
    /// Their id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Their name ("(erased)" after erasure).
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Where they are in the pipeline.
    async fn stage(&self) -> Stage {
        self.0.stage.into()
    }

    /// Their ASAM level of care while in treatment.
    async fn level_of_care(&self) -> Option<LevelOfCare> {
        self.0.level_of_care.map(Into::into)
    }

    /// The member stream's current version: pass it as `expectedVersion`.
    async fn version(&self) -> i64 {
        self.0.version
    }

    /// In treatment and attending fewer sessions a week than the clinic's threshold
    /// (`CLINIC_AT_RISK_THRESHOLD[S]`, 3 by default; clinical reads: it counts every group, so
    /// not for a facilitator, who sees their own groups' attendance).
    async fn at_risk(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        self.require(ctx, &AT_RISK).await?;
        Ok(is_at_risk(
            self.0.stage,
            self.0.sessions_attended_last_7_days,
            super::views::engagement(ctx)?.threshold,
        ))
    }

    /// Sessions attended (present or late) in the trailing 7 days, in every group (clinical
    /// reads, as `atRisk`).
    async fn sessions_attended_last_7_days(&self, ctx: &Context<'_>) -> ApiResult<i32> {
        self.require(ctx, &SESSIONS_ATTENDED).await?;
        Ok(self.0.sessions_attended_last_7_days as i32)
    }

    /// Scheduled check-ins missed in a row (2 opens an outreach item; clinical reads).
    async fn consecutive_missed_check_ins(&self, ctx: &Context<'_>) -> ApiResult<i32> {
        self.require(ctx, &MISSED_CHECK_INS).await?;
        Ok(self.0.consecutive_missed_check_ins as i32)
    }

    /// Whether their personal data was erased.
    async fn erased(&self) -> bool {
        self.0.erased
    }

    /// Their written consents (42 CFR 2.31), oldest first, each saying whether it is in force
    /// (as of the past instant, in time travel).
    #[graphql(complexity = "crate::schema::nested_list(child_complexity)")]
    async fn consents(&self, ctx: &Context<'_>) -> ApiResult<Vec<super::privacy::Consent>> {
        let past = self.0.past.as_ref().map(|past| past.consents.clone());
        super::privacy::consents_of(ctx, self.0.id, past).await
    }

    /// Their email address and phone number on file (intake staff, clinicians, admins; as of
    /// the past instant, in time travel). Read from their record; part of the profile, which
    /// the read that produced this member logged (as it does for the name).
    #[graphql(complexity = "crate::schema::nested_list(child_complexity)")]
    async fn contact(&self, ctx: &Context<'_>) -> ApiResult<Contact> {
        self.require(ctx, &CONTACT).await?;
        Ok(match &self.0.past {
            Some(past) => past.contact.clone(),
            None => Contact::of(&*super::views::member_state(ctx, self.0.id).await?),
        })
    }

    /// The emails about them, oldest first, each with the consent that allowed it (no
    /// addresses).
    #[graphql(complexity = "crate::schema::nested_list(child_complexity)")]
    async fn emails(&self, ctx: &Context<'_>) -> ApiResult<Vec<super::privacy::MemberEmail>> {
        super::privacy::emails_of(ctx, self.0.id).await
    }

    /// Their check-ins (clinical reads: admins, clinicians, auditors).
    #[graphql(complexity = "crate::schema::nested_list(child_complexity)")]
    async fn check_ins(&self, ctx: &Context<'_>) -> ApiResult<Vec<CheckIn>> {
        self.read_record(ctx, &CHECK_INS).await?;
        match &self.0.past {
            Some(past) => Ok(past.check_ins.clone()),
            None => super::views::check_ins_of(ctx, self.0.id).await,
        }
    }

    /// Their alumni follow-ups and outcomes (clinical reads: admins, clinicians, auditors).
    #[graphql(complexity = "crate::schema::nested_list(child_complexity)")]
    async fn follow_ups(&self, ctx: &Context<'_>) -> ApiResult<Vec<FollowUp>> {
        self.read_record(ctx, &FOLLOW_UPS).await?;
        match &self.0.past {
            Some(past) => Ok(past.follow_ups.clone()),
            None => super::views::follow_ups_of(ctx, self.0.id).await,
        }
    }

    /// The groups they are on (a facilitator: those of them they run; not intake, whose reads
    /// are profiles: a member's groups are their treatment).
    #[graphql(complexity = "crate::schema::nested_list(child_complexity)")]
    async fn groups(&self, ctx: &Context<'_>) -> ApiResult<Vec<super::views::Group>> {
        self.require(ctx, &GROUPS).await?;
        let ids = match &self.0.past {
            Some(past) => past.groups.clone(),
            None => super::views::group_ids_of(ctx, self.0.id).await?,
        };
        let mut readable = Vec::with_capacity(ids.len());
        for group in super::views::groups_by_ids(ctx, &ids).await? {
            if super::views::reads_group(ctx, &group.0)? {
                readable.push(group);
            }
        }
        Ok(readable)
    }

    /// Every event of their stream, oldest first (auditors, admins and clinicians).
    #[graphql(complexity = "scalars::EVENT_PAGES.complexity(first, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<EventConnection> {
        self.require(ctx, &HISTORY).await?;
        let (services, request) = (services(ctx)?, request(ctx)?);
        let limit = i64::from(scalars::EVENT_PAGES.of(first)?);
        let from_version = match after.as_deref() {
            // The version after the cursor's (saturating: the last possible one has none).
            Some(cursor) => scalars::decode(cursor)?.saturating_add(1),
            None => 1,
        };
        let stream = StreamId::of("member", self.0.id.as_uuid());
        let mut events = services
            .store
            .read_stream(&request.staff.clinic, &stream, from_version.max(1) as u64)
            .await?;
        events.truncate(limit as usize + 1);
        let keys =
            clinic_infra::codec::current_keys_for(&services.keyring, &services.pool, &events)
                .await?;
        super::views::log_reads(
            ctx,
            &[self.0.id],
            super::views::Read::Record(DataCategory::History),
            true,
        )
        .await?;
        Ok(EventConnection::from_fetched(
            events,
            Some(&keys),
            limit,
            |e| e.version,
        ))
    }
}

/// The member as their events recorded up to `at` describe them (time travel): stage, level of
/// care, check-ins, follow-ups; attendance counted from the sessions recorded by then.
pub fn snapshot(
    member: MemberId,
    events: &[RecordedEvent],
    keys: &KeySet,
    attended_last_7_days: u32,
    groups: Vec<clinic_domain::GroupId>,
    at: OffsetDateTime,
) -> ApiResult<Option<MemberView>> {
    let decoded: Vec<MemberEvent> =
        clinic_infra::codec::decode_each(keys, events).map_err(ApiError::internal)?;
    let state = MemberState::from_events(&decoded);
    let Some(stage) = state.stage() else {
        return Ok(None);
    };
    // The state forgets the name at the erasure.
    let name = state.name().unwrap_or(ERASED_NAME).to_owned();
    Ok(Some(MemberView {
        id: member,
        name,
        stage,
        level_of_care: state.level_of_care(),
        version: events.len() as i64,
        sessions_attended_last_7_days: attended_last_7_days,
        consecutive_missed_check_ins: state.consecutive_missed_check_ins(),
        erased: state.erased(),
        past: Some(Past {
            check_ins: state
                .check_ins()
                .iter()
                .map(|c| CheckIn {
                    id: ID(c.id.to_string()),
                    due_at: c.due_at,
                    status: c.status.into(),
                    closed_by_discharge: c.closed_by_discharge,
                })
                .collect(),
            follow_ups: state
                .follow_ups()
                .iter()
                .map(|f| FollowUp {
                    id: ID(f.id.to_string()),
                    day_offset: i32::from(f.day_offset),
                    due_at: f.due_at,
                    outcome: f.outcome.map(Into::into),
                    member: None,
                    member_id: member,
                })
                .collect(),
            groups,
            consents: super::privacy::consents_shown(&state, at),
            contact: Contact::of(&state),
        }),
    }))
}

/// Parses a member id argument.
pub fn member_id(id: &ID) -> ApiResult<MemberId> {
    parse_uuid(id).map(MemberId::new)
}

/// The instant a query is answered for (engagement counts are relative to it).
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}
