//! The one mapping from the shell's and the domain's errors to GraphQL errors with an
//! `extensions.code` (api/service.md): `UNAUTHENTICATED`, `FORBIDDEN`, `NOT_FOUND`,
//! `BAD_USER_INPUT`, `CONFLICT`, `INTERNAL`. Internal errors reach the client as an opaque
//! message and the log with their full chain; a rule violation is never `INTERNAL`.

use std::error::Error as StdError;

use async_graphql::ErrorExtensions;
use clinic_domain::ErrorKind;
use clinic_infra::commands::CommandError;
use clinic_infra::event_store::EventStoreError;

/// An API error, before it becomes a GraphQL error.
///
/// Deliberately not `Display`: async-graphql converts any `Display` error into a GraphQL
/// error without a code, so this type converts only through the `From` below, which sets
/// `extensions.code`. `?` in a resolver therefore always carries the code.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// No valid token.
    Unauthenticated,
    /// The role may not do this.
    Forbidden(&'static str),
    /// Nothing with that id in the caller's clinic.
    NotFound(String),
    /// The input is invalid whatever the state.
    BadInput(String),
    /// A rule or the expected version refused the command.
    Conflict(String),
    /// The read models had not reached what the answer needs within the bounded wait (a
    /// rebuild, a stalled runner). Said plainly, since the client must know whether its
    /// mutation was `stored` (then it must not repeat it, only read again).
    Behind {
        /// What the client sees.
        message: String,
        /// The mutation's events are in the log.
        stored: bool,
    },
    /// Anything else: logged in full, shown opaque.
    Internal(std::sync::Arc<dyn StdError + Send + Sync>),
}

impl ApiError {
    /// The message the client sees.
    pub fn message(&self) -> String {
        match self {
            Self::Unauthenticated => "authentication required: send a valid bearer token".into(),
            Self::Forbidden(what) => format!("your role may not {what}"),
            Self::NotFound(message) | Self::BadInput(message) | Self::Conflict(message) => {
                message.clone()
            }
            Self::Behind { message, .. } => message.clone(),
            Self::Internal(_) => "internal error".into(),
        }
    }

    /// The `extensions.code` of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadInput(_) => "BAD_USER_INPUT",
            Self::Conflict(_) => "CONFLICT",
            Self::Behind { .. } | Self::Internal(_) => "INTERNAL",
        }
    }

    /// Wraps any failure nobody branches on.
    pub fn internal(error: impl StdError + Send + Sync + 'static) -> Self {
        Self::Internal(std::sync::Arc::new(error))
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(error: ApiError) -> Self {
        if let ApiError::Internal(source) = &error {
            // The full chain goes to the log, inside the request's span; the client gets none.
            let mut chain = source.to_string();
            let mut cause = source.source();
            while let Some(next) = cause {
                chain.push_str(": ");
                chain.push_str(&next.to_string());
                cause = next.source();
            }
            tracing::error!(error = %chain, "internal error");
        }
        let code = error.code();
        let stored = matches!(error, ApiError::Behind { stored: true, .. });
        async_graphql::Error::new(error.message()).extend_with(|_, e| {
            e.set("code", code);
            if stored {
                e.set("stored", true);
            }
        })
    }
}

/// The domain errors' common surface: their kind decides the code.
pub trait DomainRefusal: StdError + Send + Sync + 'static {
    /// Invalid input, not found, or a rule conflict.
    fn kind(&self) -> ErrorKind;
}

impl DomainRefusal for clinic_domain::MemberError {
    fn kind(&self) -> ErrorKind {
        clinic_domain::MemberError::kind(self)
    }
}

impl DomainRefusal for clinic_domain::GroupError {
    fn kind(&self) -> ErrorKind {
        clinic_domain::GroupError::kind(self)
    }
}

impl<E: DomainRefusal> From<CommandError<E>> for ApiError {
    fn from(error: CommandError<E>) -> Self {
        match error {
            CommandError::Rejected(refusal) => match refusal.kind() {
                ErrorKind::InvalidInput => Self::BadInput(refusal.to_string()),
                ErrorKind::NotFound => Self::NotFound(refusal.to_string()),
                ErrorKind::Conflict => Self::Conflict(refusal.to_string()),
            },
            mismatch @ CommandError::VersionMismatch { .. } => Self::Conflict(mismatch.to_string()),
            CommandError::Store(EventStoreError::Conflict { actual, .. }) => Self::Conflict(
                format!("the record changed concurrently (now at version {actual}); read it again"),
            ),
            CommandError::Store(store) => Self::internal(store),
            CommandError::Codec(codec) => Self::internal(codec),
            reused @ CommandError::KeyReused => Self::BadInput(reused.to_string()),
        }
    }
}

impl From<EventStoreError> for ApiError {
    fn from(error: EventStoreError) -> Self {
        Self::internal(error)
    }
}

impl From<clinic_infra::keyring::KeyringError> for ApiError {
    fn from(error: clinic_infra::keyring::KeyringError) -> Self {
        Self::internal(error)
    }
}

impl From<clinic_infra::codec::CodecError> for ApiError {
    fn from(error: clinic_infra::codec::CodecError) -> Self {
        Self::internal(error)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::internal(error)
    }
}

impl From<clinic_domain::ValueError> for ApiError {
    fn from(error: clinic_domain::ValueError) -> Self {
        Self::BadInput(error.to_string())
    }
}

/// Results of resolvers.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_reach_the_client_opaque() {
        let error: async_graphql::Error =
            ApiError::internal(std::io::Error::other("relation \"events\" does not exist")).into();
        assert_eq!(error.message, "internal error");
        let code = error
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .cloned();
        assert_eq!(code, Some(async_graphql::Value::from("INTERNAL")));
    }
}
