//! The staff dashboards' queries: pipeline board, member and group lists and pages, follow-ups
//! due, outcomes, and the lists that need someone's attention. All read the read models.

use async_graphql::{Context, Object, OutputType, SimpleObject, ID};
use clinic_domain::{GroupId, MemberId};
use clinic_infra::read_models::{self, MemberFilter, PageRequest};

use super::enums::{DataCategory, FollowUpOutcome, LevelOfCare, Stage};
use super::guard::{roles, RoleGuard};
use super::member::{member_id, now, FollowUp, Member};
use super::scalars::{PageInfo, LIST_PAGES};
use super::views::{self, Group, Read};
use super::{request, services};
use crate::auth::Role;
use crate::error::{ApiError, ApiResult};

/// Members in one stage.
#[derive(SimpleObject, Clone, Debug)]
pub struct StageCount {
    /// The stage.
    pub stage: Stage,
    /// How many members are in it.
    pub count: i64,
}

/// Members in treatment at one level of care.
#[derive(SimpleObject, Clone, Debug)]
pub struct LevelCount {
    /// The level.
    pub level_of_care: LevelOfCare,
    /// How many members in treatment are at it.
    pub count: i64,
}

/// The pipeline board.
#[derive(SimpleObject, Clone, Debug)]
pub struct PipelineBoard {
    /// Members per stage, every stage listed.
    pub stages: Vec<StageCount>,
    /// Members in treatment per level of care.
    pub in_treatment_by_level: Vec<LevelCount>,
}

impl From<read_models::PipelineBoard> for PipelineBoard {
    fn from(board: read_models::PipelineBoard) -> Self {
        Self {
            stages: board
                .stages
                .into_iter()
                .map(|s| StageCount {
                    stage: s.stage.into(),
                    count: s.count,
                })
                .collect(),
            in_treatment_by_level: board
                .in_treatment_by_level
                .into_iter()
                .map(|l| LevelCount {
                    level_of_care: l.level_of_care.into(),
                    count: l.count,
                })
                .collect(),
        }
    }
}

/// One row of a page and its cursor (Relay).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(concrete(name = "MemberEdge", params(Member)))]
#[graphql(concrete(name = "GroupEdge", params(Group)))]
#[graphql(concrete(name = "FollowUpEdge", params(FollowUp)))]
#[graphql(concrete(name = "StoppedAttendingEdge", params(StoppedAttending)))]
#[graphql(concrete(name = "OutreachItemEdge", params(OutreachItem)))]
pub struct Edge<T: OutputType> {
    /// Pass as `after` to continue after this row.
    pub cursor: String,
    /// The row.
    pub node: T,
}

/// A page of a list that grows, with the list's total (Relay).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(concrete(name = "MemberConnection", params(Member)))]
#[graphql(concrete(name = "GroupConnection", params(Group)))]
#[graphql(concrete(name = "FollowUpConnection", params(FollowUp)))]
#[graphql(concrete(name = "StoppedAttendingConnection", params(StoppedAttending)))]
#[graphql(concrete(name = "OutreachItemConnection", params(OutreachItem)))]
pub struct Connection<T>
where
    T: OutputType,
    Edge<T>: OutputType,
{
    /// The rows.
    pub edges: Vec<Edge<T>>,
    /// Where the page ends.
    pub page_info: PageInfo,
    /// How many rows match, over all pages.
    pub total_count: i64,
}

impl<T> Connection<T>
where
    T: OutputType,
    Edge<T>: OutputType,
{
    /// A read model's page, each row turned into its node by `node` (a row whose node is
    /// gone, say a member erased meanwhile, is left out with its cursor).
    fn of<R>(page: read_models::Page<R>, mut node: impl FnMut(R) -> Option<T>) -> Self {
        Self {
            edges: page
                .edges
                .into_iter()
                .filter_map(|edge| {
                    Some(Edge {
                        cursor: edge.cursor,
                        node: node(edge.node)?,
                    })
                })
                .collect(),
            page_info: PageInfo {
                has_next_page: page.has_next_page,
                end_cursor: page.end_cursor,
            },
            total_count: page.total_count,
        }
    }
}

/// Recorded outcomes of one outcome kind.
#[derive(SimpleObject, Clone, Debug)]
pub struct OutcomeCount {
    /// The outcome.
    pub outcome: FollowUpOutcome,
    /// How many follow-ups recorded it.
    pub count: i64,
}

/// Outcomes at one follow-up day.
#[derive(SimpleObject, Clone, Debug)]
pub struct OutcomeRow {
    /// Days after discharge.
    pub day_offset: i32,
    /// Follow-ups with a recorded outcome.
    pub recorded: i64,
    /// Count per outcome.
    pub outcomes: Vec<OutcomeCount>,
}

/// The outcomes report.
#[derive(SimpleObject, Clone, Debug)]
pub struct OutcomeReport {
    /// One row per follow-up day.
    pub rows: Vec<OutcomeRow>,
}

/// A member flagged to a facilitator: absent from a group's last sessions in a row.
#[derive(SimpleObject, Clone, Debug)]
pub struct StoppedAttending {
    /// The group.
    pub group: Group,
    /// The member.
    pub member: Member,
    /// Absences in a row.
    pub consecutive_absences: i64,
}

/// A member who missed check-ins in a row: outreach by their primary counselor.
#[derive(SimpleObject, Clone, Debug)]
pub struct OutreachItem {
    /// The member.
    pub member: Member,
    /// Their primary counselor.
    pub primary_counselor: Option<String>,
    /// Check-ins missed in a row.
    pub consecutive_missed_check_ins: i32,
}

fn page_request(first: Option<i32>, after: Option<String>) -> ApiResult<PageRequest> {
    Ok(PageRequest {
        first: LIST_PAGES.of(first)?,
        after,
    })
}

/// Facilitators see the groups they run; everyone else sees all (None).
pub(super) fn facilitator_scope(ctx: &Context<'_>) -> ApiResult<Option<String>> {
    let request = request(ctx)?;
    Ok((request.staff.role == Role::Facilitator).then(|| request.staff.sub.clone()))
}

/// The dashboards' queries.
#[derive(Default)]
pub struct DashboardQuery;

#[Object]
impl DashboardQuery {
    /// Members per stage, and in treatment per level of care.
    #[graphql(guard = "RoleGuard::new(\"see the pipeline\", roles::READ_MEMBERS)")]
    async fn pipeline(&self, ctx: &Context<'_>) -> ApiResult<PipelineBoard> {
        let (services, request) = (services(ctx)?, request(ctx)?);
        let board = services.boards.board(&request.staff.clinic).await?;
        Ok(board.into())
    }

    /// Members in referral order, optionally of one stage and/or at risk.
    #[graphql(
        guard = "RoleGuard::new(\"list members\", roles::LIST_MEMBERS)",
        complexity = "LIST_PAGES.complexity(first, child_complexity)"
    )]
    async fn members(
        &self,
        ctx: &Context<'_>,
        stage: Option<Stage>,
        at_risk: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<Member>> {
        let (services, request) = (services(ctx)?, request(ctx)?);
        // Filtered by at risk, the list is `atRiskMembers` (or its complement): a clinical list.
        if at_risk.is_some() && !roles::CLINICAL_READ.contains(&request.staff.role) {
            return Err(ApiError::Forbidden("list members by risk"));
        }
        let page = services
            .member_pages
            .page(
                &request.staff.clinic,
                MemberFilter {
                    stage: stage.map(Into::into),
                    at_risk,
                },
                &page_request(first, after)?,
                views::engagement(ctx)?,
            )
            .await?;
        let members = Connection::of(page, |summary| Some(views::member_from_summary(summary)));
        let ids: Vec<MemberId> = members.edges.iter().map(|e| e.node.0.id).collect();
        // Filtered by at risk, or showing each member's attendance, the list is an attendance
        // read (which covers the profiles it shows).
        let node = ctx.look_ahead().field("edges").field("node");
        views::log_member_reads(ctx, &ids, Read::List, node, at_risk.is_some()).await?;
        Ok(members)
    }

    /// One member of the caller's clinic.
    #[graphql(
        guard = "RoleGuard::new(\"read member records\", roles::READ_MEMBERS).reading(id.clone(), DataCategory::Profile)"
    )]
    async fn member(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Member>> {
        let id = member_id(&id)?;
        views::ensure_in_scope(ctx, id).await?;
        let member = views::member_by_id(ctx, id).await?;
        if member.is_some() {
            views::log_member_reads(ctx, &[id], Read::Record, ctx.look_ahead(), false).await?;
        }
        Ok(member)
    }

    /// Groups in the order they were formed (a facilitator sees their own).
    #[graphql(
        guard = "RoleGuard::new(\"list groups\", roles::READ_MEMBERS)",
        complexity = "LIST_PAGES.complexity(first, child_complexity)"
    )]
    async fn groups(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<Group>> {
        let (services, request) = (services(ctx)?, request(ctx)?);
        let facilitator = facilitator_scope(ctx)?;
        let page = read_models::groups_page(
            &services.pool,
            &request.staff.clinic,
            facilitator.as_deref(),
            &page_request(first, after)?,
        )
        .await?;
        Ok(Connection::of(page, |group| Some(Group(group))))
    }

    /// One group of the caller's clinic (a facilitator: one they run).
    #[graphql(guard = "RoleGuard::new(\"read groups\", roles::READ_MEMBERS)")]
    async fn group(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Group>> {
        let id = GroupId::new(super::audit::parse_uuid(&id)?);
        let group = views::groups_by_ids(ctx, &[id]).await?.pop();
        if let Some(group) = &group {
            views::ensure_runs(ctx, &group.0)?;
        }
        Ok(group)
    }

    /// Open follow-ups due within `withinDays` (default 7; overdue ones included), by due time:
    /// the whole list (`dueFollowUps` pages it).
    #[graphql(
        guard = "RoleGuard::new(\"see follow-ups\", roles::CLINICAL_READ)",
        complexity = "LIST_PAGES.unpaged_complexity(child_complexity)"
    )]
    async fn follow_ups_due(
        &self,
        ctx: &Context<'_>,
        within_days: Option<i32>,
    ) -> ApiResult<Vec<FollowUp>> {
        let (services, request) = (services(ctx)?, request(ctx)?);
        let due = read_models::follow_ups_due(
            &services.pool,
            &request.staff.clinic,
            within(within_days)?,
            now(),
        )
        .await?;
        let mut follow_ups: Vec<FollowUp> = due.into_iter().map(views::follow_up_of).collect();
        with_members(ctx, follow_ups.iter_mut(), ctx.look_ahead().field("member")).await?;
        Ok(follow_ups)
    }

    /// Open follow-ups due within `withinDays` (default 7; overdue ones included), by due time,
    /// a page at a time: the work list as it grows.
    #[graphql(
        guard = "RoleGuard::new(\"see follow-ups\", roles::CLINICAL_READ)",
        complexity = "LIST_PAGES.complexity(first, child_complexity)"
    )]
    async fn due_follow_ups(
        &self,
        ctx: &Context<'_>,
        within_days: Option<i32>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<FollowUp>> {
        let (services, request) = (services(ctx)?, request(ctx)?);
        let page = read_models::follow_ups_due_page(
            &services.pool,
            &request.staff.clinic,
            within(within_days)?,
            now(),
            &page_request(first, after)?,
        )
        .await?;
        let mut due = Connection::of(page, |f| Some(views::follow_up_of(f)));
        with_members(
            ctx,
            due.edges.iter_mut().map(|e| &mut e.node),
            edge_members(ctx),
        )
        .await?;
        Ok(due)
    }

    /// Outcomes recorded per follow-up day (counts only; no one is named). A clinical read,
    /// as the follow-ups it counts are: in a small clinic a count of relapses can point to a
    /// person.
    #[graphql(guard = "RoleGuard::new(\"see outcomes\", roles::CLINICAL_READ)")]
    async fn outcomes(&self, ctx: &Context<'_>) -> ApiResult<OutcomeReport> {
        let (services, request) = (services(ctx)?, request(ctx)?);
        let report = read_models::outcomes(&services.pool, &request.staff.clinic).await?;
        Ok(OutcomeReport {
            rows: report
                .rows
                .into_iter()
                .map(|r| OutcomeRow {
                    day_offset: r.day_offset,
                    recorded: r.recorded,
                    outcomes: r
                        .outcomes
                        .into_iter()
                        .map(|o| OutcomeCount {
                            outcome: o.outcome.into(),
                            count: o.count,
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    /// Members in treatment attending fewer sessions in the last 7 days than the clinic's
    /// threshold (`CLINIC_AT_RISK_THRESHOLD[S]`, 3 by default), all at once.
    #[graphql(
        guard = "RoleGuard::new(\"see members at risk\", roles::CLINICAL_READ)",
        complexity = "LIST_PAGES.unpaged_complexity(child_complexity)",
        deprecation = "the whole list at once; `members(atRisk: true)` pages it"
    )]
    async fn at_risk_members(&self, ctx: &Context<'_>) -> ApiResult<Vec<Member>> {
        let (services, request) = (services(ctx)?, request(ctx)?);
        let summaries = read_models::at_risk_members(
            &services.pool,
            &request.staff.clinic,
            views::engagement(ctx)?,
        )
        .await?;
        let members = views::members_from_summaries(summaries);
        let ids: Vec<MemberId> = members.iter().map(|m| m.0.id).collect();
        views::log_listed_members(ctx, &ids, DataCategory::Attendance, ctx.look_ahead()).await?;
        Ok(members)
    }

    /// Members absent from a group's last 2 sessions in a row (a facilitator: their groups), by
    /// group then join.
    #[graphql(
        guard = "RoleGuard::new(\"see attendance flags\", roles::SESSION_READ)",
        complexity = "LIST_PAGES.complexity(first, child_complexity)"
    )]
    async fn stopped_attending(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<StoppedAttending>> {
        let (services, request) = (services(ctx)?, request(ctx)?);
        let facilitator = facilitator_scope(ctx)?;
        let page = read_models::stopped_attending(
            &services.pool,
            &request.staff.clinic,
            facilitator.as_deref(),
            &page_request(first, after)?,
        )
        .await?;
        let member_ids: Vec<MemberId> = page.edges.iter().map(|e| e.node.member_id).collect();
        let group_ids: Vec<GroupId> = page.edges.iter().map(|e| e.node.group_id).collect();
        let members = views::members_by_id(ctx, &member_ids).await?;
        let groups = views::groups_by_id(ctx, &group_ids).await?;
        let flags = Connection::of(page, |flag| {
            Some(StoppedAttending {
                group: groups.get(&flag.group_id)?.clone(),
                member: members.get(&flag.member_id)?.clone(),
                consecutive_absences: flag.consecutive_absences,
            })
        });
        let shown: Vec<MemberId> = flags.edges.iter().map(|e| e.node.member.0.id).collect();
        views::log_listed_members(ctx, &shown, DataCategory::Attendance, edge_members(ctx)).await?;
        Ok(flags)
    }

    /// Members who missed 2 or more check-ins in a row, for their primary counselor, in
    /// referral order.
    #[graphql(
        guard = "RoleGuard::new(\"see outreach items\", roles::CLINICAL_READ)",
        complexity = "LIST_PAGES.complexity(first, child_complexity)"
    )]
    async fn outreach_items(
        &self,
        ctx: &Context<'_>,
        counselor: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<OutreachItem>> {
        let (services, request) = (services(ctx)?, request(ctx)?);
        // A name as staff records it: a control character (a NUL, which PostgreSQL refuses in
        // text) is the caller's mistake, not an internal error.
        let counselor = counselor
            .map(|name| clinic_domain::values::Text::parse("counselor", &name))
            .transpose()?;
        let page = read_models::outreach_items(
            &services.pool,
            &request.staff.clinic,
            counselor.as_ref().map(|name| name.as_str()),
            &page_request(first, after)?,
        )
        .await?;
        let ids: Vec<MemberId> = page.edges.iter().map(|e| e.node.member_id).collect();
        let members = views::members_by_id(ctx, &ids).await?;
        let items = Connection::of(page, |item| {
            Some(OutreachItem {
                member: members.get(&item.member_id)?.clone(),
                primary_counselor: item.primary_counselor,
                consecutive_missed_check_ins: item.consecutive_missed_check_ins,
            })
        });
        let shown: Vec<MemberId> = items.edges.iter().map(|e| e.node.member.0.id).collect();
        views::log_listed_members(ctx, &shown, DataCategory::CheckIns, edge_members(ctx)).await?;
        Ok(items)
    }
}

/// `withinDays` of the follow-up lists: 7 unless given, at most ten years.
fn within(within_days: Option<i32>) -> ApiResult<u32> {
    match within_days {
        None => Ok(7),
        Some(n) if (0..=3660).contains(&n) => Ok(n as u32),
        Some(_) => Err(ApiError::BadInput(
            "`withinDays` must be between 0 and 3660".into(),
        )),
    }
}

/// Logs the read of the listed follow-ups' members and, when the query asks for them, attaches
/// each follow-up's member: one batch for the whole list (left to each follow-up's `member`,
/// hundreds of loads spread over many small batches under load, 26 queries a request
/// measured).
async fn with_members<'a>(
    ctx: &Context<'_>,
    follow_ups: impl Iterator<Item = &'a mut FollowUp>,
    member: async_graphql::Lookahead<'_>,
) -> ApiResult<()> {
    let mut follow_ups: Vec<&mut FollowUp> = follow_ups.collect();
    let ids: Vec<MemberId> = follow_ups.iter().map(|f| f.member_id).collect();
    if member.exists() {
        let members = views::members_by_id(ctx, &ids).await?;
        for follow_up in &mut follow_ups {
            follow_up.member = members.get(&follow_up.member_id).map(|m| m.0.clone());
        }
    }
    views::log_listed_members(ctx, &ids, DataCategory::Outcomes, member).await
}

/// The selection of each listed member in a connection (`edges { node { member { … } } }`).
fn edge_members<'a>(ctx: &'a Context<'_>) -> async_graphql::Lookahead<'a> {
    ctx.look_ahead()
        .field("edges")
        .field("node")
        .field("member")
}
