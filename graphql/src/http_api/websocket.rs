//! The schema as `GET /graphql/ws` serves it: subscriptions only, and none whose fragments
//! stand for too many fields (see `expansion`).
//!
//! graphql-transport-ws lets a client send queries and mutations on the socket too, but those
//! would run without what `POST /graphql` gives each request: its loaders, its own correlation
//! id and operation name in the access log, its metrics and its error codes. They are refused
//! with a pointer to `POST /graphql` instead of half-working.

use std::sync::Arc;

use async_graphql::futures_util::stream::{self, BoxStream, StreamExt};
use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{Data, Executor, Request, Response, ServerError};

use crate::error::ApiError;
use crate::schema::ClinicSchema;

/// [`ClinicSchema`] refusing every operation but a subscription.
#[derive(Clone)]
pub struct SubscriptionsOnly(pub ClinicSchema);

impl Executor for SubscriptionsOnly {
    async fn execute(&self, mut request: Request) -> Response {
        match refusal(&mut request) {
            Some(error) => Response::from_errors(vec![error]),
            None => self.0.execute(request).await,
        }
    }

    fn execute_stream(
        &self,
        mut request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        match refusal(&mut request) {
            Some(error) => stream::once(async move { Response::from_errors(vec![error]) }).boxed(),
            None => Executor::execute_stream(&self.0, request, session_data),
        }
    }
}

/// Why `request` may not run on the socket, if it may not. The document is parsed into the
/// request, so the schema runs this parse rather than its own; one the parser refuses is left
/// to the schema, which answers it as it answers any other.
fn refusal(request: &mut Request) -> Option<ServerError> {
    if let Err(error) = super::nesting::check(&request.query) {
        let error: async_graphql::Error = error.into();
        return Some(error.into_server_error(async_graphql::Pos::default()));
    }
    let name = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    if let Err(error) = super::expansion::check(document) {
        let error: async_graphql::Error = error.into();
        return Some(error.into_server_error(async_graphql::Pos::default()));
    }
    let operation = match (&document.operations, name.as_deref()) {
        (DocumentOperations::Single(operation), _) => operation,
        (DocumentOperations::Multiple(operations), Some(name)) => {
            operations.iter().find(|(n, _)| n.as_str() == name)?.1
        }
        // Several operations and no name: the schema refuses that itself.
        (DocumentOperations::Multiple(_), None) => return None,
    };
    if operation.node.ty == OperationType::Subscription {
        return None;
    }
    let error: async_graphql::Error = ApiError::BadInput(
        "this socket serves subscriptions; send queries and mutations to POST /graphql".into(),
    )
    .into();
    Some(error.into_server_error(operation.pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(query: &str, name: Option<&str>) -> bool {
        let mut request = Request::new(query);
        if let Some(name) = name {
            request = request.operation_name(name);
        }
        refusal(&mut request).is_some()
    }

    #[test]
    fn only_subscriptions_run_on_the_socket() {
        assert!(!refused(
            "subscription { events(streamPrefix: \"member-\") { type } }",
            None
        ));
        assert!(refused("{ pipeline { stages { stage } } }", None));
        assert!(refused(
            "mutation { referMember(name: \"R\", source: SELF) { id } }",
            None
        ));
        let both = "subscription S { events { type } } query Q { pipeline { total } }";
        assert!(!refused(both, Some("S")));
        assert!(refused(both, Some("Q")));
        // Left to the schema, which refuses them with its own errors.
        assert!(!refused("{ not graphql", None));
        assert!(!refused(both, None));
    }
}
