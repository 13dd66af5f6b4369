//! The GraphQL schema (`schema.graphql` is its exported SDL, checked by a test against the
//! contract in `contract/`): one module per area, guards for roles, the access log for reads.

mod audit;
mod dashboard;
pub mod enums;
mod guard;
mod member;
mod mutation;
mod privacy;
mod request_digest;
mod scalars;
mod subscription;
mod times;
pub mod views;

use async_graphql::{MergedObject, Schema};
use clinic_domain::{GroupDecider, MemberDecider};
use clinic_infra::access_log::AccessLogWriter;
use clinic_infra::commands::CommandHandler;
use clinic_infra::config::ClinicRules;
use clinic_infra::event_store::EventStore;
use clinic_infra::keyring::Keyring;
use clinic_infra::projections::ProjectionName;
use clinic_infra::read_models::{BoardCache, MemberPages};
use sqlx::PgPool;
use uuid::Uuid;

pub use guard::RoleGuard;

use crate::auth::Staff;

/// The root query: the sum of every area's queries.
#[derive(MergedObject, Default)]
pub struct Query(
    dashboard::DashboardQuery,
    audit::AuditQuery,
    privacy::PrivacyQuery,
);

/// The root mutation: the sum of every area's mutations.
#[derive(MergedObject, Default)]
pub struct Mutation(mutation::PipelineMutation, privacy::PrivacyMutation);

/// The served schema.
pub type ClinicSchema = Schema<Query, Mutation, subscription::Subscription>;

/// How deep a query may nest before it is refused. The standard introspection query
/// (graphql-js's, which GraphiQL at `GET /graphql` and codegen tools send) nests 13 deep, 15 in
/// graphql-js 17; what a deep data query costs is bounded by [`MAX_COMPLEXITY`].
pub const MAX_DEPTH: usize = 15;
/// How much a query may ask for before it is refused: about how many values its answer may
/// hold. Each field weighs 1; a page weighs its selection once per row it may return
/// (`PageSizes::complexity`), and a list nested in a record its selection times its
/// expected length ([`NESTED_LIST_WEIGHT`], [`SESSION_LIST_WEIGHT`]). A full page of 500 members
/// or 1,000 events with every plain field passes; the same page with each member's groups, their
/// rosters and those members' groups does not, nor does a history of each member.
pub const MAX_COMPLEXITY: usize = 50_000;
/// What a list nested in a record (a member's groups, check-ins and follow-ups; a group's
/// roster; a session's attendance) multiplies its fields' cost by: about its length. A
/// dashboard nests two or three of them; a query cycling through them (`groups { members {
/// groups { members … } } }`) passes [`MAX_COMPLEXITY`] within a few levels, whatever the depth
/// limit.
pub const NESTED_LIST_WEIGHT: usize = 5;
/// What a group's sessions multiply their fields' cost by: the list grows by about 150 a year
/// (three a week); it weighs as a couple of months of them, so that a page of groups with
/// their sessions' attendance (a facilitators' overview) still passes.
pub const SESSION_LIST_WEIGHT: usize = 20;

/// What a list weighs: its selection (`child_complexity`) times how many rows it may hold,
/// saturating at just past [`MAX_COMPLEXITY`]. async-graphql adds siblings' weights with plain
/// arithmetic, and a document can repeat a fragment thousands of times at every level: an
/// uncapped product could wrap around to a small number and let the query through.
pub fn weigh(rows: usize, child_complexity: usize) -> usize {
    rows.saturating_mul(child_complexity)
        .min(MAX_COMPLEXITY + 1)
}

/// What a list nested in a record weighs ([`NESTED_LIST_WEIGHT`] rows of its selection).
pub fn nested_list(child_complexity: usize) -> usize {
    weigh(NESTED_LIST_WEIGHT, child_complexity)
}

/// What resolvers reach: the database, the store and the command handlers.
#[derive(Debug, Clone)]
pub struct Services {
    /// Read models and the access log.
    pub pool: PgPool,
    /// The log.
    pub store: EventStore,
    /// Member commands.
    pub members: CommandHandler<MemberDecider>,
    /// Group commands.
    pub groups: CommandHandler<GroupDecider>,
    /// The member data keys (opening personal fields, erasure).
    pub keyring: Keyring,
    /// Days of treatment records kept before erasure is allowed.
    pub retention_days: u32,
    /// The clinics' at-risk thresholds and follow-up schedule.
    pub rules: ClinicRules,
    /// Where reads are logged (group commit: one INSERT for the requests waiting at once).
    pub access_log: AccessLogWriter,
    /// The pipeline boards, kept in memory between the members projection's commits (every
    /// dashboard reads one).
    pub boards: BoardCache,
    /// The member-list pages, kept in memory between their projections' commits (every member
    /// of staff opens the list).
    pub member_pages: MemberPages,
}

impl Services {
    /// Services over a migrated database (inside a tokio runtime: the access-log writer starts
    /// its tasks, the read-model copies their listening).
    pub fn new(pool: PgPool, keyring: Keyring, retention_days: u32, rules: ClinicRules) -> Self {
        let store = EventStore::new(pool.clone());
        Self {
            members: CommandHandler::new(store.clone(), keyring.clone()),
            groups: CommandHandler::new(store.clone(), keyring.clone()),
            store,
            access_log: AccessLogWriter::spawn(pool.clone()),
            boards: BoardCache::new(&pool),
            member_pages: MemberPages::new(&pool),
            pool,
            keyring,
            retention_days,
            rules,
        }
    }

    /// Drops the in-memory copies read from `projections`: this process saw them apply a
    /// write, and the next read must show it whether or not their NOTIFY came yet.
    pub fn projections_committed(&self, projections: &[ProjectionName]) {
        self.boards.committed(projections);
        self.member_pages.committed(projections);
    }
}

/// Who is asking, for this request: put into the request's data by the HTTP layer.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The verified staff member.
    pub staff: Staff,
    /// Shared by everything this request causes (events' metadata, access log entries).
    pub correlation_id: Uuid,
    /// The GraphQL operation name, or `anonymous`.
    pub operation: String,
    /// The client's idempotency key for mutations.
    pub idempotency_key: Option<String>,
    /// Whether this context outlives one request (a websocket's, kept from its
    /// `connection_init`): then its token's expiry is checked on every use.
    pub long_lived: bool,
}

/// The services, from a resolver's context.
pub fn services<'a>(ctx: &async_graphql::Context<'a>) -> crate::error::ApiResult<&'a Services> {
    ctx.data::<Services>().map_err(|_| {
        crate::error::ApiError::internal(std::io::Error::other("schema built without services"))
    })
}

/// Who is asking, from a resolver's context (the HTTP layer always puts it there).
pub fn request<'a>(
    ctx: &async_graphql::Context<'a>,
) -> crate::error::ApiResult<&'a RequestContext> {
    let request = ctx
        .data::<RequestContext>()
        .map_err(|_| crate::error::ApiError::Unauthenticated)?;
    // A websocket keeps the context of its `connection_init` token: past the token's expiry,
    // nothing more runs on it. An HTTP request's token is checked once, as it arrives (a
    // mutation whose token expires while it runs still logs its reads and answers).
    if request.long_lived && request.staff.expires_at <= time::OffsetDateTime::now_utc() {
        return Err(crate::error::ApiError::Unauthenticated);
    }
    Ok(request)
}

/// The schema's shape and limits, before its data.
fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, subscription::Subscription> {
    Schema::build(
        Query::default(),
        Mutation::default(),
        subscription::Subscription,
    )
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
}

/// Builds the schema with its limits.
pub fn build(services: Services) -> ClinicSchema {
    builder().data(services).finish()
}

/// The SDL of the served schema (what `schema.graphql` holds).
pub fn sdl() -> String {
    builder().finish().sdl()
}
