//! The schema as `GET /graphql/ws` serves it: subscriptions only, and none whose fragments
//! stand for too many fields (see `expansion`).
//!
//! graphql-transport-ws lets a client send queries and mutations on the socket too, but those
//! would run without what `POST /graphql` gives each request: its loaders, its own correlation
//! id and operation name in the access log, its metrics and its error codes. They are refused
//! with a pointer to `POST /graphql` instead of half-working.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use async_graphql::futures_util::stream::{self, BoxStream, StreamExt};
use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{Data, Executor, Pos, Request, Response, ServerError};
use time::OffsetDateTime;

use super::server_error;
use crate::auth::Staff;
use crate::error::ApiError;
use crate::schema::ClinicSchema;

/// The largest message (and frame) a client may send on the socket: a subscription's document
/// and variables, or `connection_init` with its token, are a few hundred bytes. Every message
/// is parsed whole into JSON before the token is known, so the default (64 MiB) let anyone
/// make the service hold gigabytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// How long a socket may stay open without a successful `connection_init`
/// (graphql-transport-ws closes such a socket with 4408; it is simply dropped here).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most sockets one process serves at once. Each holds a task, a place among the listeners
/// of the process's one LISTEN connection and up to [`MAX_SUBSCRIPTIONS`] subscriptions; a
/// dashboard opens one. Past this, a handshake gets 503 until one closes.
pub const MAX_SOCKETS: usize = 1_000;

/// The most sockets one staff member (one `sub` of one clinic) may hold open at once, whatever
/// their tokens: a dashboard per browser tab is a handful. Without it, one leaked or looping
/// token could take every one of the process's [`MAX_SOCKETS`] places and lock every other
/// dashboard out.
pub const MAX_SOCKETS_PER_STAFF: usize = 32;

/// The sockets each staff member holds open now (counted from a successful `connection_init`).
#[derive(Debug)]
pub struct StaffSockets {
    max: usize,
    open: Mutex<HashMap<(String, String), usize>>,
}

/// A staff member's place in [`StaffSockets`], given back when the socket closes (it lives in
/// the socket's connection data).
pub struct StaffSocket {
    sockets: Arc<StaffSockets>,
    staff: (String, String),
}

impl StaffSockets {
    /// At most `max` sockets per staff member ([`MAX_SOCKETS_PER_STAFF`]; tests lower it).
    pub fn new(max: usize) -> Self {
        Self {
            max,
            open: Mutex::default(),
        }
    }

    /// A place for a socket of `staff`, unless they hold the most already.
    pub fn take(self: &Arc<Self>, staff: &Staff) -> Result<StaffSocket, ApiError> {
        let key = (staff.clinic.as_str().to_owned(), staff.sub.clone());
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let held = open.entry(key.clone()).or_default();
        if *held >= self.max {
            return Err(ApiError::Conflict(format!(
                "this staff member holds {} subscription sockets already; close one first",
                self.max
            )));
        }
        *held += 1;
        Ok(StaffSocket {
            sockets: Arc::clone(self),
            staff: key,
        })
    }
}

impl Drop for StaffSocket {
    fn drop(&mut self) {
        let mut open = self
            .sockets
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = open.get_mut(&self.staff) {
            *held -= 1;
            if *held == 0 {
                open.remove(&self.staff);
            }
        }
    }
}

/// The most subscriptions one socket may hold at once. A dashboard holds a few; each one reads
/// the database when it wakes, so without a cap one socket could keep the pool busy.
pub const MAX_SUBSCRIPTIONS: usize = 16;

/// The subscriptions a socket holds now (in its connection data, from `connection_init`).
#[derive(Debug, Default, Clone)]
pub struct Subscriptions(Arc<AtomicUsize>);

/// A place in a socket's [`Subscriptions`], given back when its stream ends or is stopped.
struct Held(Arc<AtomicUsize>);

impl Subscriptions {
    fn take(&self) -> Option<Held> {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                (held < MAX_SUBSCRIPTIONS).then_some(held + 1)
            })
            .ok()
            .map(|_| Held(Arc::clone(&self.0)))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How long a socket stays open after its token expired: its subscriptions completed at the
/// expiry, and a request sent since is answered UNAUTHENTICATED; then the socket is dropped, so
/// it does not hold one of the process's [`MAX_SOCKETS`] places for good.
pub const AFTER_EXPIRY: Duration = Duration::from_secs(5);

/// Serves a socket while it is authorised: dropped after [`INIT_TIMEOUT`] unless
/// `connection_init` has set `expires_at` (a socket that never authenticates would otherwise
/// stay open for good), and [`AFTER_EXPIRY`] past its token's expiry.
pub async fn served_while_authorised(
    serve: impl Future<Output = ()>,
    expires_at: Arc<OnceLock<OffsetDateTime>>,
) {
    tokio::pin!(serve);
    tokio::select! {
        () = &mut serve => return,
        () = tokio::time::sleep(INIT_TIMEOUT) => {}
    }
    let Some(expires_at) = expires_at.get().copied() else {
        return;
    };
    let left = Duration::try_from(expires_at - OffsetDateTime::now_utc()).unwrap_or_default();
    tokio::select! {
        () = &mut serve => {}
        () = tokio::time::sleep(left + AFTER_EXPIRY) => {}
    }
}

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
        if let Some(error) = refusal(&mut request) {
            return refused(error);
        }
        let subscriptions = session_data
            .as_ref()
            .and_then(|data| data.get(&std::any::TypeId::of::<Subscriptions>()))
            .and_then(|any| any.downcast_ref::<Subscriptions>())
            .cloned();
        let schema = self.0.clone();
        // A subscribe on an id in use replaces that id's stream, which async-graphql drops
        // only after this returns: on a socket holding the most, the place is taken again when
        // the stream is first polled, after the drop (refused now, the replacement would be
        // refused and both lost). Taken now when free, so the first sixteen keep theirs.
        // Left: a new id and a replacement sent in one burst at the cap both wait for the
        // first poll, and whichever async-graphql polls first takes the freed place.
        let now = subscriptions.as_ref().and_then(Subscriptions::take);
        stream::once(async move {
            let held = now.or_else(|| subscriptions.as_ref().and_then(Subscriptions::take));
            let Some(held) = held else {
                let error = ApiError::BadInput(format!(
                    "a socket may hold at most {MAX_SUBSCRIPTIONS} subscriptions; complete \
                     one before starting another"
                ));
                return refused(server_error(error, Pos::default()));
            };
            Executor::execute_stream(&schema, request, session_data)
                .map(move |response| {
                    // The place is held as long as the stream is.
                    let _ = &held;
                    response
                })
                .boxed()
        })
        .flatten()
        .boxed()
    }
}

fn refused(error: ServerError) -> BoxStream<'static, Response> {
    stream::once(async move { Response::from_errors(vec![error]) }).boxed()
}

/// Why `request` may not run on the socket, if it may not. The document is parsed into the
/// request, so the schema runs this parse rather than its own; one the parser refuses is left
/// to the schema, which answers it as it answers any other.
fn refusal(request: &mut Request) -> Option<ServerError> {
    if let Err(error) = super::nesting::check(&request.query) {
        return Some(server_error(error, Pos::default()));
    }
    let name = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    if let Err(error) = super::expansion::check(document) {
        return Some(server_error(error, Pos::default()));
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
    let error = ApiError::BadInput(
        "this socket serves subscriptions; send queries and mutations to POST /graphql".into(),
    );
    Some(server_error(error, operation.pos))
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
