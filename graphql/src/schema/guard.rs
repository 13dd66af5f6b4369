//! Role checks, attached to every field and mutation (`#[graphql(guard = ...)]`).

use async_graphql::{Context, Guard, Result};

use super::RequestContext;
use crate::auth::Role;
use crate::error::ApiError;

/// Allows the listed roles; refuses others with `FORBIDDEN` and anonymous callers with
/// `UNAUTHENTICATED`.
pub struct RoleGuard {
    roles: &'static [Role],
    what: &'static str,
}

impl RoleGuard {
    /// A guard for `what` (used in the refusal message), open to `roles`.
    pub const fn new(what: &'static str, roles: &'static [Role]) -> Self {
        Self { roles, what }
    }
}

impl Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let request = ctx
            .data_opt::<RequestContext>()
            .ok_or(ApiError::Unauthenticated)?;
        if self.roles.contains(&request.staff.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(self.what).into())
        }
    }
}

/// Role sets, named by what they allow (DOMAIN.md "Who may do what").
pub mod roles {
    use crate::auth::Role::{self, *};

    /// The log, time travel, integrity and the access log.
    pub const AUDIT: &[Role] = &[Admin, Auditor];
}
