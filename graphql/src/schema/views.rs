//! The read side of the API: members and groups from the projections' read models, loaded in
//! batches (`DataLoader`s per request, so nested lists cost one round trip per level, not per
//! row), and every read of a member's record by a person written to the access log.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, SimpleObject, ID};
use clinic_domain::{FollowUpId, GroupId, MemberId, MemberState, SessionId};
use clinic_infra::access_log::{AccessEntry, Accessed};
use clinic_infra::clinic::ClinicId;
use clinic_infra::projections::{self, Freshness, ProjectionName};
use clinic_infra::read_models::{self, Engagement, GroupSummary, MemberSummary};
use sqlx::PgPool;
use time::OffsetDateTime;

use super::enums::{AttendanceStatus, DataCategory, GroupModel};
use super::guard::{roles, RoleGuard};
use super::member::{now, CheckIn, FollowUp, Member, MemberView};
use super::{request, services};
use crate::error::{ApiError, ApiResult};

/// How long a mutation waits for the projections to apply its write before answering.
pub const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(5);

impl From<read_models::ReadModelError> for ApiError {
    fn from(error: read_models::ReadModelError) -> Self {
        match error {
            read_models::ReadModelError::InvalidCursor => {
                ApiError::BadInput("the `after` cursor is not one this list returned".into())
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<projections::ProjectionError> for ApiError {
    fn from(error: projections::ProjectionError) -> Self {
        ApiError::internal(error)
    }
}

/// The per-request loaders (created by the HTTP layer with the caller's clinic).
pub struct Loaders {
    /// Members by id.
    pub members: DataLoader<MemberLoader>,
    /// Groups by id.
    pub groups: DataLoader<GroupLoader>,
    /// Rosters by group.
    pub rosters: DataLoader<RosterLoader>,
    /// Sessions by group.
    pub sessions: DataLoader<SessionLoader>,
    /// Check-ins by member.
    pub check_ins: DataLoader<CheckInLoader>,
    /// Follow-ups by member.
    pub follow_ups: DataLoader<FollowUpLoader>,
    /// Group ids by member.
    pub memberships: DataLoader<MembershipLoader>,
    /// Members' records folded from their streams.
    pub states: MemberStates,
}

impl Loaders {
    /// Loaders for one request of `clinic`, whose at-risk threshold is `at_risk_threshold`.
    pub fn new(pool: PgPool, clinic: ClinicId, at_risk_threshold: u32) -> Self {
        let source = Source {
            pool,
            clinic,
            at_risk_threshold,
        };
        Self {
            members: DataLoader::new(MemberLoader(source.clone()), tokio::spawn),
            groups: DataLoader::new(GroupLoader(source.clone()), tokio::spawn),
            rosters: DataLoader::new(RosterLoader(source.clone()), tokio::spawn),
            sessions: DataLoader::new(SessionLoader(source.clone()), tokio::spawn),
            check_ins: DataLoader::new(CheckInLoader(source.clone()), tokio::spawn),
            follow_ups: DataLoader::new(FollowUpLoader(source.clone()), tokio::spawn),
            memberships: DataLoader::new(MembershipLoader(source), tokio::spawn),
            states: MemberStates::default(),
        }
    }
}

/// Members' current records, folded from their streams once per request: fields that read the
/// record (`contact`, `consents`) cost one read of the stream between them, and show one
/// version of it in one answer.
#[derive(Default)]
pub struct MemberStates(
    std::sync::Mutex<HashMap<MemberId, Arc<tokio::sync::OnceCell<Arc<MemberState>>>>>,
);

impl MemberStates {
    /// `member`'s record as this request first loaded it, or `load`ed now. A load that fails
    /// is not kept: the next field asks again.
    pub async fn get_or_load<Load>(
        &self,
        member: MemberId,
        load: impl FnOnce() -> Load,
    ) -> ApiResult<Arc<MemberState>>
    where
        Load: std::future::Future<Output = ApiResult<MemberState>>,
    {
        let cell = Arc::clone(
            self.0
                .lock()
                // The map is whole whatever a panicking holder did (one insert at a time).
                .unwrap_or_else(|e| e.into_inner())
                .entry(member)
                .or_default(),
        );
        cell.get_or_try_init(|| async { load().await.map(Arc::new) })
            .await
            .cloned()
    }

    /// Forgets every record loaded: the request wrote, and what it shows next must include it
    /// (a document may hold several mutations, each answering with the member).
    pub fn forget(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Forgets the member records this request loaded: it wrote (or may have), and what it shows
/// next must include that.
pub fn forget_member_states(ctx: &Context<'_>) {
    if let Ok(loaders) = loaders(ctx) {
        loaders.states.forget();
    }
}

/// `member`'s current record (of the caller's clinic), folded from their stream once per
/// request.
pub async fn member_state(ctx: &Context<'_>, member: MemberId) -> ApiResult<Arc<MemberState>> {
    let (services, request) = (services(ctx)?, request(ctx)?);
    let load = || async {
        Ok(services
            .members
            .load(
                &request.staff.clinic,
                &super::mutation::member_stream(member),
            )
            .await?)
    };
    match loaders(ctx) {
        Ok(loaders) => loaders.states.get_or_load(member, load).await,
        // A socket's subscriptions have no request loaders: loaded for the field alone.
        Err(_) => load().await.map(Arc::new),
    }
}

#[derive(Clone)]
struct Source {
    pool: PgPool,
    clinic: ClinicId,
    at_risk_threshold: u32,
}

/// Loads member summaries: one query per batch.
pub struct MemberLoader(Source);
/// Loads group summaries.
pub struct GroupLoader(Source);
/// Loads rosters (member ids per group).
pub struct RosterLoader(Source);
/// Loads sessions with attendance per group.
pub struct SessionLoader(Source);
/// Loads check-ins per member.
pub struct CheckInLoader(Source);
/// Loads follow-ups per member.
pub struct FollowUpLoader(Source);
/// Loads the groups each member is on.
pub struct MembershipLoader(Source);

/// Groups rows by member, every key present (an empty list for a member without rows).
fn by_member<T>(
    keys: &[MemberId],
    rows: impl IntoIterator<Item = (MemberId, T)>,
) -> HashMap<MemberId, Vec<T>> {
    let mut grouped: HashMap<MemberId, Vec<T>> = keys.iter().map(|k| (*k, Vec::new())).collect();
    for (member, row) in rows {
        grouped.entry(member).or_default().push(row);
    }
    grouped
}

impl Loader<MemberId> for CheckInLoader {
    type Value = Vec<CheckIn>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[MemberId]) -> Result<HashMap<MemberId, Self::Value>, Self::Error> {
        let Source { pool, clinic, .. } = &self.0;
        let rows = read_models::check_ins_of_members(pool, clinic, keys)
            .await
            .map_err(|e| Arc::new(ApiError::from(e)))?;
        Ok(by_member(
            keys,
            rows.into_iter().map(|c| {
                (
                    c.member_id,
                    CheckIn {
                        id: ID(c.id.to_string()),
                        due_at: c.due_at,
                        status: c.status.into(),
                        closed_by_discharge: c.closed_by_discharge,
                    },
                )
            }),
        ))
    }
}

impl Loader<MemberId> for FollowUpLoader {
    type Value = Vec<FollowUp>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[MemberId]) -> Result<HashMap<MemberId, Self::Value>, Self::Error> {
        let Source { pool, clinic, .. } = &self.0;
        let rows = read_models::follow_ups_of_members(pool, clinic, keys)
            .await
            .map_err(|e| Arc::new(ApiError::from(e)))?;
        Ok(by_member(
            keys,
            rows.into_iter().map(|f| (f.member_id, follow_up_of(f))),
        ))
    }
}

impl Loader<MemberId> for MembershipLoader {
    type Value = Vec<GroupId>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[MemberId]) -> Result<HashMap<MemberId, Self::Value>, Self::Error> {
        let Source { pool, clinic, .. } = &self.0;
        let rows = read_models::groups_of_members(pool, clinic, keys)
            .await
            .map_err(|e| Arc::new(ApiError::from(e)))?;
        Ok(by_member(
            keys,
            rows.into_iter().map(|r| (r.member_id, r.group_id)),
        ))
    }
}

/// A live member's check-ins (batched across the members of a response).
pub async fn check_ins_of(ctx: &Context<'_>, member: MemberId) -> ApiResult<Vec<CheckIn>> {
    Ok(loaders(ctx)?
        .check_ins
        .load_one(member)
        .await
        .map_err(|e| (*e).clone())?
        .unwrap_or_default())
}

/// A live member's follow-ups (batched).
pub async fn follow_ups_of(ctx: &Context<'_>, member: MemberId) -> ApiResult<Vec<FollowUp>> {
    Ok(loaders(ctx)?
        .follow_ups
        .load_one(member)
        .await
        .map_err(|e| (*e).clone())?
        .unwrap_or_default())
}

/// The groups a live member is on (batched).
pub async fn group_ids_of(ctx: &Context<'_>, member: MemberId) -> ApiResult<Vec<GroupId>> {
    Ok(loaders(ctx)?
        .memberships
        .load_one(member)
        .await
        .map_err(|e| (*e).clone())?
        .unwrap_or_default())
}

impl Loader<MemberId> for MemberLoader {
    type Value = Arc<MemberView>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[MemberId]) -> Result<HashMap<MemberId, Self::Value>, Self::Error> {
        let engagement = Engagement {
            now: now(),
            threshold: self.0.at_risk_threshold,
        };
        let Source { pool, clinic, .. } = &self.0;
        let summaries = read_models::members_by_ids(pool, clinic, keys, engagement)
            .await
            .map_err(|e| Arc::new(ApiError::from(e)))?;
        Ok(summaries
            .into_iter()
            .map(|s| (s.id, Arc::new(view_of(s))))
            .collect())
    }
}

impl Loader<GroupId> for GroupLoader {
    type Value = GroupSummary;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[GroupId]) -> Result<HashMap<GroupId, Self::Value>, Self::Error> {
        let Source { pool, clinic, .. } = &self.0;
        let groups = read_models::groups_by_ids(pool, clinic, keys)
            .await
            .map_err(|e| Arc::new(ApiError::from(e)))?;
        Ok(groups.into_iter().map(|g| (g.id, g)).collect())
    }
}

impl Loader<GroupId> for RosterLoader {
    type Value = Vec<MemberId>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[GroupId]) -> Result<HashMap<GroupId, Self::Value>, Self::Error> {
        let Source { pool, clinic, .. } = &self.0;
        let entries = read_models::rosters(pool, clinic, keys)
            .await
            .map_err(|e| Arc::new(ApiError::from(e)))?;
        let mut rosters: HashMap<GroupId, Vec<MemberId>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for entry in entries {
            rosters
                .entry(entry.group_id)
                .or_default()
                .push(entry.member_id);
        }
        Ok(rosters)
    }
}

impl Loader<GroupId> for SessionLoader {
    type Value = Vec<read_models::Session>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[GroupId]) -> Result<HashMap<GroupId, Self::Value>, Self::Error> {
        let Source { pool, clinic, .. } = &self.0;
        let sessions = read_models::sessions_of_groups(pool, clinic, keys)
            .await
            .map_err(|e| Arc::new(ApiError::from(e)))?;
        let mut by_group: HashMap<GroupId, Vec<read_models::Session>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for session in sessions {
            by_group.entry(session.group_id).or_default().push(session);
        }
        Ok(by_group)
    }
}

/// A read-model summary as the API shows it (nested lists load on demand).
fn view_of(s: MemberSummary) -> MemberView {
    MemberView {
        id: s.id,
        name: s.name,
        stage: s.stage,
        level_of_care: s.level_of_care,
        version: s.version,
        sessions_attended_last_7_days: u32::try_from(s.sessions_attended_last_7_days).unwrap_or(0),
        consecutive_missed_check_ins: u32::try_from(s.consecutive_missed_check_ins).unwrap_or(0),
        erased: s.erased,
        past: None,
    }
}

/// A read-model follow-up as the API shows it.
pub fn follow_up_of(f: read_models::FollowUp) -> FollowUp {
    FollowUp {
        id: ID(f.id.to_string()),
        day_offset: f.day_offset,
        due_at: f.due_at,
        outcome: f.outcome.map(Into::into),
        member: None,
        member_id: f.member_id,
    }
}

fn loaders<'a>(ctx: &Context<'a>) -> ApiResult<&'a Loaders> {
    ctx.data::<Loaders>()
        .map_err(|_| ApiError::internal(std::io::Error::other("request without loaders")))
}

/// What a person read, for the access log.
#[derive(Debug, Clone, Copy)]
pub enum Read {
    /// One member's record.
    Record(DataCategory),
    /// A list that returned these members.
    List(DataCategory),
}

/// Appends one access-log entry per member read by the caller.
pub async fn log_reads(
    ctx: &Context<'_>,
    members: &[MemberId],
    read: Read,
    allowed: bool,
) -> ApiResult<()> {
    record_reads(ctx, members, read, allowed, None).await
}

/// The associated data a break-glass reason is sealed with (see [`log_break_glass`]).
pub const BREAK_GLASS_REASON: &str = "access_log/break_glass_reason";

/// Logs a break-glass read of `member`'s profile with the reader's stated reason. The reason is
/// free text that may identify the member, so it is sealed under the member's key: erasing the
/// member makes it unreadable like their events (the access log itself is append-only).
pub async fn log_break_glass(ctx: &Context<'_>, member: MemberId, reason: &str) -> ApiResult<()> {
    let (services, request) = (services(ctx)?, request(ctx)?);
    let sealed = clinic_infra::codec::seal_text(
        &services.keyring,
        &request.staff.clinic,
        member.as_uuid(),
        BREAK_GLASS_REASON,
        reason,
    )
    .await?;
    record_reads(
        ctx,
        &[member],
        Read::Record(DataCategory::Profile),
        true,
        Some(sealed),
    )
    .await
}

async fn record_reads(
    ctx: &Context<'_>,
    members: &[MemberId],
    read: Read,
    allowed: bool,
    reason: Option<String>,
) -> ApiResult<()> {
    let (services, request) = (services(ctx)?, request(ctx)?);
    write_reads(
        &services.access_log,
        request,
        members,
        read,
        allowed,
        reason,
    )
    .await
}

/// Who reads, kept past the resolver: a subscription logs each push, long after its resolver
/// returned its stream.
#[derive(Debug, Clone)]
pub struct Reader {
    access_log: clinic_infra::access_log::AccessLogWriter,
    request: super::RequestContext,
}

impl Reader {
    /// The caller of the resolver `ctx` belongs to.
    pub fn of(ctx: &Context<'_>) -> ApiResult<Self> {
        Ok(Self {
            access_log: services(ctx)?.access_log.clone(),
            request: request(ctx)?.clone(),
        })
    }

    /// [`log_reads`] for this reader.
    pub async fn log(&self, members: &[MemberId], read: Read) -> ApiResult<()> {
        write_reads(&self.access_log, &self.request, members, read, true, None).await
    }
}

async fn write_reads(
    access_log: &clinic_infra::access_log::AccessLogWriter,
    request: &super::RequestContext,
    members: &[MemberId],
    read: Read,
    allowed: bool,
    reason: Option<String>,
) -> ApiResult<()> {
    let (action, category) = match read {
        Read::Record(category) => ("read", category),
        Read::List(category) => ("query", category),
    };
    let entry = |accessed| AccessEntry {
        actor: request.staff.sub.clone(),
        role: request.staff.role.to_string(),
        accessed,
        action,
        category: Some(category.as_str()),
        allowed,
        operation: request.operation.clone(),
        correlation_id: request.correlation_id,
        break_glass_reason: reason.clone(),
    };
    // Each member once, in the order shown: a list of follow-ups shows an alumnus once per
    // follow-up, and the auditor would otherwise see one read as several.
    let mut seen = std::collections::HashSet::new();
    let once: Vec<uuid::Uuid> = members
        .iter()
        .map(MemberId::as_uuid)
        .filter(|member| seen.insert(*member))
        .collect();
    // A list is one row naming every member it showed (DOMAIN.md: "a list for dashboard
    // queries"); auditors still see an entry per member.
    let entries: Vec<AccessEntry> = match read {
        Read::List(_) if once.is_empty() => Vec::new(),
        Read::List(_) => vec![entry(Accessed::List(once))],
        Read::Record(_) => once
            .into_iter()
            .map(|member| entry(Accessed::Member(member)))
            .collect(),
    };
    access_log.record(&request.staff.clinic, entries).await?;
    Ok(())
}

/// The categories a read of members is logged under, one access-log entry each: attendance
/// when the selection shows it (`atRisk`, `sessionsAttendedLast7Days`, the member's `groups`)
/// or the list is `filtered_by_risk`, check-ins when it shows `consecutiveMissedCheckIns`, if
/// the caller may see them; these cover the profile shown beside them. Profile otherwise.
/// `member` is the selection of the member object. (The member's own lists, `checkIns` and the
/// rest, log their reads themselves.)
pub fn member_read_categories(
    ctx: &Context<'_>,
    member: async_graphql::Lookahead<'_>,
    filtered_by_risk: bool,
) -> Vec<DataCategory> {
    use super::member::{AT_RISK, GROUPS, MISSED_CHECK_INS};
    // Each field by the roles that may read it: a facilitator sees a member's groups (those
    // they run), not their attendance across groups.
    let role = request(ctx).ok().map(|r| r.staff.role);
    let shows = |fields: &[&str], restricted: &super::member::Restricted| {
        role.is_some_and(|role| restricted.roles.contains(&role))
            && fields.iter().any(|f| member.field(f).exists())
    };
    let mut categories = Vec::new();
    if filtered_by_risk
        || shows(&["atRisk", "sessionsAttendedLast7Days"], &AT_RISK)
        || shows(&["groups"], &GROUPS)
    {
        categories.push(DataCategory::Attendance);
    }
    if shows(&["consecutiveMissedCheckIns"], &MISSED_CHECK_INS) {
        categories.push(DataCategory::CheckIns);
    }
    if categories.is_empty() {
        categories.push(DataCategory::Profile);
    }
    categories
}

/// Logs an allowed read of `members` (`as_read`: a record or a list) under each category the
/// selection `member` shows ([`member_read_categories`]).
pub async fn log_member_reads(
    ctx: &Context<'_>,
    members: &[MemberId],
    as_read: fn(DataCategory) -> Read,
    member: async_graphql::Lookahead<'_>,
    filtered_by_risk: bool,
) -> ApiResult<()> {
    for category in member_read_categories(ctx, member, filtered_by_risk) {
        log_reads(ctx, members, as_read(category), true).await?;
    }
    Ok(())
}

/// Logs a list read of `members` as `listed` (what the list is about: the follow-ups' outcomes,
/// the attendance flags) and under each further category the selection `member` shows of them
/// (a follow-up's member with their check-in count is a check-ins read too). `listed` covers
/// the profile shown beside it.
pub async fn log_listed_members(
    ctx: &Context<'_>,
    members: &[MemberId],
    listed: DataCategory,
    member: async_graphql::Lookahead<'_>,
) -> ApiResult<()> {
    log_reads(ctx, members, Read::List(listed), true).await?;
    for category in member_read_categories(ctx, member, false) {
        if category != listed && category != DataCategory::Profile {
            log_reads(ctx, members, Read::List(category), true).await?;
        }
    }
    Ok(())
}

/// Minimum necessary: a facilitator reads only members on the rosters of groups they run.
/// A refused read is logged (allowed: false) and answered `FORBIDDEN`.
pub async fn ensure_in_scope(ctx: &Context<'_>, member: MemberId) -> ApiResult<()> {
    let request = request(ctx)?;
    if request.staff.role != crate::auth::Role::Facilitator {
        return Ok(());
    }
    let services = services(ctx)?;
    let on_their_roster = read_models::is_on_roster_of_facilitator(
        &services.pool,
        &request.staff.clinic,
        member,
        &request.staff.sub,
    )
    .await?;
    if on_their_roster {
        Ok(())
    } else {
        log_reads(ctx, &[member], Read::Record(DataCategory::Profile), false).await?;
        Err(ApiError::Forbidden(
            "read a member who is not on a roster of a group you facilitate",
        ))
    }
}

/// A member of the caller's clinic, if there is one.
pub async fn member_by_id(ctx: &Context<'_>, id: MemberId) -> ApiResult<Option<Member>> {
    let view = loaders(ctx)?
        .members
        .load_one(id)
        .await
        .map_err(|e| (*e).clone())?;
    Ok(view.map(Member))
}

/// Members of the caller's clinic, in the order asked (unknown ids skipped).
pub async fn members_by_ids(ctx: &Context<'_>, ids: &[MemberId]) -> ApiResult<Vec<Member>> {
    let found = members_by_id(ctx, ids).await?;
    Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
}

/// Members of the caller's clinic by id, in one batch (unknown ids absent): for lists that
/// attach each row's member.
pub async fn members_by_id(
    ctx: &Context<'_>,
    ids: &[MemberId],
) -> ApiResult<HashMap<MemberId, Member>> {
    let found = loaders(ctx)?
        .members
        .load_many(ids.iter().copied())
        .await
        .map_err(|e| (*e).clone())?;
    Ok(found
        .into_iter()
        .map(|(id, view)| (id, Member(view)))
        .collect())
}

/// Members from the summaries a list query returned.
pub fn members_from_summaries(summaries: Vec<MemberSummary>) -> Vec<Member> {
    summaries.into_iter().map(member_from_summary).collect()
}

/// The member a list query's summary describes.
pub fn member_from_summary(summary: MemberSummary) -> Member {
    Member(Arc::new(view_of(summary)))
}

/// Waits (bounded) until the projections have applied the write at `position`; if they do not
/// in time, the error says the write was stored (read again, do not repeat it).
pub(super) async fn wait_for(ctx: &Context<'_>, position: i64) -> ApiResult<()> {
    forget_member_states(ctx);
    if caught_up(ctx, ProjectionName::ALL, position).await? {
        // The next read of a copied read model must show this write, whether or not the
        // projections' NOTIFY came yet.
        services(ctx)?.projections_committed(ProjectionName::ALL);
        return Ok(());
    }
    tracing::warn!(position, "the read models did not reach a write in time");
    Err(ApiError::Behind {
        message: format!(
            "the change was recorded (log position {position}), but the dashboards have not \
             caught up with it yet; do not repeat it: read the record again shortly"
        ),
        stored: true,
    })
}

/// Waits (bounded) until `projections` have applied `position`: an answer that depends on
/// them is then as fresh as the log at that position.
pub(super) async fn wait_until(
    ctx: &Context<'_>,
    projections: &[ProjectionName],
    position: i64,
) -> ApiResult<()> {
    if caught_up(ctx, projections, position).await? {
        return Ok(());
    }
    tracing::warn!(
        position,
        "the read models did not reach the log's head in time"
    );
    Err(ApiError::Behind {
        message: "the dashboards are catching up with the log; try again shortly".into(),
        stored: false,
    })
}

/// Whether `projections` applied `position` within the read-your-writes wait.
async fn caught_up(
    ctx: &Context<'_>,
    projections: &[ProjectionName],
    position: i64,
) -> ApiResult<bool> {
    let services = services(ctx)?;
    let freshness = projections::wait_until_caught_up(
        &services.pool,
        projections,
        position,
        READ_YOUR_WRITES_TIMEOUT,
    )
    .await?;
    Ok(freshness == Freshness::CaughtUp)
}

/// The member after a write at `position` (read-your-writes); logged as a read.
pub async fn member_after_write(
    ctx: &Context<'_>,
    id: MemberId,
    position: i64,
) -> ApiResult<Member> {
    wait_for(ctx, position).await?;
    let services = services(ctx)?;
    let request = request(ctx)?;
    let summaries = read_models::members_by_ids(
        &services.pool,
        &request.staff.clinic,
        &[id],
        engagement(ctx)?,
    )
    .await?;
    let member = members_from_summaries(summaries)
        .pop()
        .ok_or_else(|| ApiError::NotFound(format!("member {id} not found")))?;
    log_member_reads(ctx, &[id], Read::Record, ctx.look_ahead(), false).await?;
    Ok(member)
}

/// The group after a write at `position` (read-your-writes).
pub async fn group_after_write(ctx: &Context<'_>, id: GroupId, position: i64) -> ApiResult<Group> {
    wait_for(ctx, position).await?;
    let services = services(ctx)?;
    let request = request(ctx)?;
    read_models::groups_by_ids(&services.pool, &request.staff.clinic, &[id])
        .await?
        .pop()
        .map(Group)
        .ok_or_else(|| ApiError::NotFound(format!("group {id} not found")))
}

/// A session after a write at `position`.
pub async fn session_after_write(
    ctx: &Context<'_>,
    group: GroupId,
    session: SessionId,
    position: i64,
) -> ApiResult<Session> {
    wait_for(ctx, position).await?;
    let services = services(ctx)?;
    let request = request(ctx)?;
    read_models::sessions_of_groups(&services.pool, &request.staff.clinic, &[group])
        .await?
        .into_iter()
        .find(|s| s.id == session)
        .map(Session)
        .ok_or_else(|| ApiError::NotFound(format!("session {session} not found")))
}

/// A follow-up after a write at `position`.
pub async fn follow_up_after_write(
    ctx: &Context<'_>,
    id: FollowUpId,
    position: i64,
) -> ApiResult<FollowUp> {
    wait_for(ctx, position).await?;
    let member = member_of_follow_up(ctx, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("follow-up {id} not found")))?;
    let services = services(ctx)?;
    let request = request(ctx)?;
    read_models::follow_ups_of_members(&services.pool, &request.staff.clinic, &[member])
        .await?
        .into_iter()
        .find(|f| f.id == id)
        .map(follow_up_of)
        .ok_or_else(|| ApiError::NotFound(format!("follow-up {id} not found")))
}

/// The member a follow-up belongs to (follow-up ids are derived, not reversible).
pub async fn member_of_follow_up(ctx: &Context<'_>, id: FollowUpId) -> ApiResult<Option<MemberId>> {
    let (services, request) = (services(ctx)?, request(ctx)?);
    Ok(read_models::member_of_follow_up(&services.pool, &request.staff.clinic, id).await?)
}

/// Groups by id, in the order asked (unknown ids skipped).
pub async fn groups_by_ids(ctx: &Context<'_>, ids: &[GroupId]) -> ApiResult<Vec<Group>> {
    let found = groups_by_id(ctx, ids).await?;
    Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
}

/// Groups of the caller's clinic by id, in one batch (unknown ids absent): for lists that
/// attach each row's group.
pub async fn groups_by_id(
    ctx: &Context<'_>,
    ids: &[GroupId],
) -> ApiResult<HashMap<GroupId, Group>> {
    let found = loaders(ctx)?
        .groups
        .load_many(ids.iter().copied())
        .await
        .map_err(|e| (*e).clone())?;
    Ok(found
        .into_iter()
        .map(|(id, summary)| (id, Group(summary)))
        .collect())
}

/// A therapy group.
#[derive(Clone, Debug)]
pub struct Group(pub GroupSummary);

#[async_graphql::Object]
impl Group {
    /// Its id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Its name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Its therapy model.
    async fn model(&self) -> GroupModel {
        self.0.model.into()
    }
    /// Most members it takes.
    async fn capacity(&self) -> i32 {
        self.0.capacity
    }
    /// The staff member (`sub`) who runs it.
    async fn facilitator(&self) -> Option<&str> {
        self.0.facilitator.as_deref()
    }
    /// The group stream's version: pass it as `expectedVersion`.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// Whether it is for alumni.
    async fn alumni(&self) -> bool {
        self.0.alumni
    }
    /// Whether it meets online.
    async fn online(&self) -> bool {
        self.0.online
    }
    /// Whether it is closed.
    async fn closed(&self) -> bool {
        self.0.closed
    }
    /// Present or late over all recorded attendance, 0..1.
    async fn attendance_rate(&self) -> f64 {
        self.0.attendance_rate
    }
    /// Who is on the roster now (a facilitator: of a group they run; not intake).
    #[graphql(complexity = "crate::schema::nested_list(child_complexity)")]
    async fn members(&self, ctx: &Context<'_>) -> ApiResult<Vec<Member>> {
        ensure_reads_roster(ctx, &self.0, "read rosters").await?;
        let roster = roster_of(ctx, self.0.id).await?;
        let members = members_by_ids(ctx, &roster).await?;
        log_member_reads(ctx, &roster, Read::List, ctx.look_ahead(), false).await?;
        Ok(members)
    }
    /// Its sessions, oldest first, with attendance (a facilitator: of a group they run).
    #[graphql(
        complexity = "crate::schema::weigh(crate::schema::SESSION_LIST_WEIGHT, child_complexity)"
    )]
    async fn sessions(&self, ctx: &Context<'_>) -> ApiResult<Vec<Session>> {
        ensure_reads_roster(ctx, &self.0, "read sessions").await?;
        let sessions = loaders(ctx)?
            .sessions
            .load_one(self.0.id)
            .await
            .map_err(|e| (*e).clone())?
            .unwrap_or_default();
        Ok(sessions.into_iter().map(Session).collect())
    }
}

/// Who is on `group`'s roster now, through the request's loader.
async fn roster_of(ctx: &Context<'_>, group: GroupId) -> ApiResult<Vec<MemberId>> {
    Ok(loaders(ctx)?
        .rosters
        .load_one(group)
        .await
        .map_err(|e| (*e).clone())?
        .unwrap_or_default())
}

/// Whether the caller may read `group`'s roster and sessions: a role that reads them (a
/// facilitator: of a group they run). Another role (intake) is refused `what` with
/// `FORBIDDEN`, and the refusal is logged as a denied attendance read of each member on the
/// roster, as a refused member field is (DOMAIN.md: the access log records denied reads too).
async fn ensure_reads_roster(
    ctx: &Context<'_>,
    group: &GroupSummary,
    what: &'static str,
) -> ApiResult<()> {
    if roles::SESSION_READ.contains(&request(ctx)?.staff.role) {
        return ensure_runs(ctx, group);
    }
    let roster = roster_of(ctx, group.id).await?;
    log_reads(ctx, &roster, Read::List(DataCategory::Attendance), false).await?;
    Err(ApiError::Forbidden(what))
}

/// Whether the caller may read `group`: a facilitator reads only the groups they run (DOMAIN.md
/// "Who may do what"), however they reached it (`group`, a member's groups, a flag, a roster's
/// member); every other role any group of the clinic.
pub(super) fn reads_group(ctx: &Context<'_>, group: &GroupSummary) -> ApiResult<bool> {
    Ok(match super::dashboard::facilitator_scope(ctx)? {
        Some(facilitator) => group.facilitator.as_deref() == Some(facilitator.as_str()),
        None => true,
    })
}

/// [`reads_group`], refusing with `FORBIDDEN`.
pub(super) fn ensure_runs(ctx: &Context<'_>, group: &GroupSummary) -> ApiResult<()> {
    if reads_group(ctx, group)? {
        Ok(())
    } else {
        Err(ApiError::Forbidden("read a group you do not facilitate"))
    }
}

/// A group session.
#[derive(Clone, Debug)]
pub struct Session(pub read_models::Session);

#[async_graphql::Object]
impl Session {
    /// Its id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// When it was held (none while only scheduled or when cancelled).
    async fn held_at(&self) -> Option<OffsetDateTime> {
        self.0.held_at
    }
    /// When it was scheduled to start.
    async fn starts_at(&self) -> Option<OffsetDateTime> {
        self.0.starts_at
    }
    /// Its topic.
    async fn topic(&self) -> &str {
        &self.0.topic
    }
    /// Scheduled, held or cancelled.
    async fn status(&self) -> &'static str {
        self.0.status.as_str()
    }
    /// Attendance of every member on the roster, after corrections.
    #[graphql(
        guard = "RoleGuard::new(\"read attendance\", roles::SESSION_READ)",
        complexity = "crate::schema::nested_list(child_complexity)"
    )]
    async fn attendance(&self, ctx: &Context<'_>) -> ApiResult<Vec<AttendanceRecord>> {
        let ids: Vec<MemberId> = self.0.attendance.iter().map(|a| a.member_id).collect();
        let members = loaders(ctx)?
            .members
            .load_many(ids.iter().copied())
            .await
            .map_err(|e| (*e).clone())?;
        log_listed_members(
            ctx,
            &ids,
            DataCategory::Attendance,
            ctx.look_ahead().field("member"),
        )
        .await?;
        Ok(self
            .0
            .attendance
            .iter()
            .filter_map(|a| {
                members.get(&a.member_id).map(|view| AttendanceRecord {
                    member: Member(view.clone()),
                    status: a.status.into(),
                })
            })
            .collect())
    }
}

/// One member's attendance at a session.
#[derive(SimpleObject, Clone, Debug)]
pub struct AttendanceRecord {
    /// The member.
    pub member: Member,
    /// How they attended.
    pub status: AttendanceStatus,
}

/// Engagement as the caller's clinic measures it now: its at-risk threshold (ClinicRules).
pub(super) fn engagement(ctx: &Context<'_>) -> ApiResult<Engagement> {
    let (services, request) = (services(ctx)?, request(ctx)?);
    Ok(Engagement {
        now: now(),
        threshold: services.rules.at_risk_threshold(&request.staff.clinic),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_record_is_loaded_once_per_request_until_it_writes_and_a_failed_load_is_not_kept() {
        let states = MemberStates::default();
        let member = MemberId::new(uuid::Uuid::new_v4());
        let loads = AtomicUsize::new(0);
        let failed = states
            .get_or_load(member, || async {
                loads.fetch_add(1, Ordering::SeqCst);
                Err(ApiError::internal(std::io::Error::other("no connection")))
            })
            .await;
        assert!(failed.is_err());
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok(MemberState::default())
        };
        let first = states.get_or_load(member, load).await.unwrap();
        let second = states.get_or_load(member, load).await.unwrap();
        assert!(Arc::ptr_eq(&first, &second), "one record for the request");
        assert_eq!(
            loads.load(Ordering::SeqCst),
            2,
            "the failed load was not kept"
        );
        let other = MemberId::new(uuid::Uuid::new_v4());
        states.get_or_load(other, load).await.unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 3, "another member is loaded");
        states.forget();
        let after_a_write = states.get_or_load(member, load).await.unwrap();
        assert!(
            !Arc::ptr_eq(&first, &after_a_write),
            "loaded again after a write"
        );
        assert_eq!(loads.load(Ordering::SeqCst), 4);
    }
}
