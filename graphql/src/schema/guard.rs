//! Role checks, attached to every field and mutation (`#[graphql(guard = ...)]`).

use async_graphql::{Context, Guard, Result, ID};
use clinic_domain::MemberId;

use super::enums::DataCategory;
use super::views::{log_reads, Read};
use crate::auth::Role;
use crate::error::{ApiError, ApiResult};

/// Allows the listed roles; refuses others with `FORBIDDEN` and anonymous callers with
/// `UNAUTHENTICATED`. On a field that reads one member's record ([`RoleGuard::reading`]), a
/// refusal is written to the access log, like every other refused read.
pub struct RoleGuard {
    roles: &'static [Role],
    what: &'static str,
    reading: Option<(ID, DataCategory)>,
}

impl RoleGuard {
    /// A guard for `what` (used in the refusal message), open to `roles`.
    pub const fn new(what: &'static str, roles: &'static [Role]) -> Self {
        Self {
            roles,
            what,
            reading: None,
        }
    }

    /// The field reads `member`'s record (`category`): a refusal is access-logged.
    pub fn reading(mut self, member: ID, category: DataCategory) -> Self {
        self.reading = Some((member, category));
        self
    }
}

impl Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let reading = self.reading.as_ref().and_then(|(member, category)| {
            let member = uuid::Uuid::parse_str(member.as_str()).ok()?;
            Some((MemberId::new(member), *category))
        });
        if let Some((member, category)) = reading {
            return Ok(require_reading(ctx, self.what, self.roles, member, category).await?);
        }
        let request = super::request(ctx)?;
        if self.roles.contains(&request.staff.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(self.what).into())
        }
    }
}

/// The role check of a read of `member`'s record: allows `roles`, refuses others with
/// `FORBIDDEN` and logs the refused read. Fields nested in a member (whose id is no argument a
/// guard could see) call it themselves; [`RoleGuard::reading`] calls it for the rest.
pub async fn require_reading(
    ctx: &Context<'_>,
    what: &'static str,
    roles: &'static [Role],
    member: MemberId,
    category: DataCategory,
) -> ApiResult<()> {
    let request = super::request(ctx)?;
    if roles.contains(&request.staff.role) {
        return Ok(());
    }
    log_reads(ctx, &[member], Read::Record(category), false).await?;
    Err(ApiError::Forbidden(what))
}

/// Role sets, named by what they allow (DOMAIN.md "Who may do what").
pub mod roles {
    use crate::auth::Role::{self, *};

    /// Reads of member records and dashboards.
    pub const READ_MEMBERS: &[Role] = &[Admin, Clinician, Intake, Auditor, Facilitator];
    /// The member list (facilitators read only their rosters, through their groups).
    pub const LIST_MEMBERS: &[Role] = &[Admin, Clinician, Intake, Auditor];
    /// Clinical lists: follow-ups, members at risk, outreach.
    pub const CLINICAL_READ: &[Role] = &[Admin, Clinician, Auditor];
    /// Attendance flags (facilitators see their own groups').
    pub const SESSION_READ: &[Role] = &[Admin, Clinician, Facilitator, Auditor];
    /// Referral and intake commands.
    pub const INTAKE: &[Role] = &[Admin, Clinician, Intake];
    /// Clinical commands on members and groups.
    pub const CLINICAL: &[Role] = &[Admin, Clinician];
    /// Recording sessions (facilitators only for their own groups, checked in the resolver).
    pub const SESSIONS: &[Role] = &[Admin, Clinician, Facilitator];
    /// A member's event history: auditors, admins and the clinicians who treat them.
    pub const HISTORY: &[Role] = &[Admin, Auditor, Clinician];
    /// A member's written consents: who records them, and who must know what they allow.
    pub const CONSENTS: &[Role] = &[Admin, Clinician, Intake, Auditor];
    /// Recording a disclosure to a third party.
    pub const DISCLOSE: &[Role] = &[Admin, Clinician];
    /// The accounting of disclosures a member may ask for.
    pub const DISCLOSURES: &[Role] = &[Admin, Clinician, Auditor];
    /// Administration: undeliverable emails, erasure.
    pub const ADMIN: &[Role] = &[Admin];
    /// The log, time travel, integrity and the access log.
    pub const AUDIT: &[Role] = &[Admin, Auditor];
}
