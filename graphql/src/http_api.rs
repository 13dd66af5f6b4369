//! The GraphQL endpoints: `POST /graphql` (token checked before anything runs), `GET /graphql`
//! (GraphiQL), `GET /graphql/ws` (subscriptions; token in `connection_init`) and `/metrics`.

mod documents;
mod expansion;
pub mod graphiql;
mod nesting;
mod websocket;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::parser::types::DocumentOperations;
use async_graphql::Data;
use async_graphql::ErrorExtensions;
use async_graphql::ParseRequestError;
use async_graphql_axum::rejection::GraphQLRejection;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::extract::{FromRequest, Request, State, WebSocketUpgrade};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clinic_infra::projections::ProjectionName;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use uuid::Uuid;

use crate::auth::{Staff, TokenKeys};
use crate::error::ApiError;
use crate::schema::views::Loaders;
use crate::schema::RequestContext;
use crate::server::AppState;

pub use documents::DocumentCache;
pub use websocket::{StaffSockets, MAX_SOCKETS, MAX_SOCKETS_PER_STAFF};

/// The process-wide Prometheus recorder (installed once; every router shares it).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may be installed already (a test binary); keep this handle.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// `GET /metrics`: Prometheus text format: the process's counters and histograms, then this
/// server's gauges of its database ([`DatabaseGauges`]).
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state.metrics.render();
    text.push_str(&state.database_gauges.render(&state.pool).await);
    ([("content-type", "text/plain; version=0.0.4")], text)
}

/// Gauges that describe the database (each projection's lag, the outbox's depth), read when
/// `/metrics` is scraped, so every process reports the same truth; at most once a second
/// ([`DATABASE_GAUGES_EVERY`]), since the endpoint needs no token and a read costs the API's
/// pool two queries. Kept per server and rendered by it, not in the process's recorder: a
/// process that served two databases (the tests do) would otherwise show one's values as the
/// other's.
#[derive(Debug)]
pub struct DatabaseGauges {
    throttle: Throttle,
    last: std::sync::Mutex<Readings>,
}

/// The last values read; a value that could not be read keeps its previous one (logged).
#[derive(Debug, Default, Clone)]
struct Readings {
    lag: Vec<(String, i64)>,
    outbox: Option<clinic_infra::outbox::OutboxDepth>,
}

impl Default for DatabaseGauges {
    fn default() -> Self {
        Self {
            throttle: Throttle::every(DATABASE_GAUGES_EVERY),
            last: std::sync::Mutex::default(),
        }
    }
}

impl DatabaseGauges {
    /// The gauges in the text format, read from `pool` first if they are due.
    async fn render(&self, pool: &sqlx::PgPool) -> String {
        if self.throttle.due(Instant::now()) {
            let mut readings = self.readings();
            read_database_gauges(pool, &mut readings).await;
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) = readings;
        }
        let readings = self.readings();
        let mut text = String::from("# TYPE clinic_projection_lag_positions gauge\n");
        for (projection, lag) in &readings.lag {
            text.push_str(&format!(
                "clinic_projection_lag_positions{{projection=\"{projection}\"}} {lag}\n"
            ));
        }
        if let Some(depth) = readings.outbox {
            text.push_str(&format!(
                "# TYPE clinic_outbox_pending gauge\nclinic_outbox_pending {}\n\
                 # TYPE clinic_outbox_dead gauge\nclinic_outbox_dead {}\n",
                depth.pending, depth.dead
            ));
        }
        text
    }

    fn readings(&self) -> Readings {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// How often `/metrics` may read the database's gauges; scrapes in between show the values of
/// the last read.
pub const DATABASE_GAUGES_EVERY: Duration = Duration::from_secs(1);

/// Lets something happen at most once per period, whoever asks.
#[derive(Debug)]
pub struct Throttle {
    period: Duration,
    last: std::sync::Mutex<Option<Instant>>,
}

impl Throttle {
    /// At most once per `period`.
    pub const fn every(period: Duration) -> Self {
        Self {
            period,
            last: std::sync::Mutex::new(None),
        }
    }

    /// Whether it may happen at `now`; if so, the period starts again.
    pub fn due(&self, now: Instant) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|last| now.saturating_duration_since(last) < self.period) {
            return false;
        }
        *last = Some(now);
        true
    }
}

async fn read_database_gauges(pool: &sqlx::PgPool, readings: &mut Readings) {
    let projections: Vec<&str> = ProjectionName::ALL
        .iter()
        .chain([&ProjectionName::Outbox])
        .map(|p| p.as_str())
        .collect();
    match sqlx::query_as::<_, (String, i64)>(include_str!("http_api/projection_lag.sql"))
        .bind(&projections)
        .fetch_all(pool)
        .await
    {
        Ok(lag) => readings.lag = lag,
        Err(error) => {
            tracing::warn!(error = %error, "could not read projection lag; its gauges are stale")
        }
    }
    match clinic_infra::outbox::depth(pool).await {
        Ok(depth) => readings.outbox = Some(depth),
        Err(error) => {
            tracing::warn!(error = %error, "could not read the outbox depth; its gauges are stale")
        }
    }
}

/// `POST /graphql`: a query or mutation from a staff member with a valid token.
pub async fn graphql(State(state): State<AppState>, http: Request) -> Response {
    // The token first, before the body is read: a caller without one costs no parsing and
    // learns nothing, not even what is wrong with its body.
    let headers = http.headers();
    // Two of a header that names one thing (who asks, which request) are refused, not read as
    // whichever comes first: a proxy and a client adding one each would otherwise disagree
    // silently about who asked.
    let Ok(authorization) = single(headers, header::AUTHORIZATION) else {
        return unauthenticated();
    };
    let staff = match state
        .keys
        .verify_header(authorization.and_then(|v| v.to_str().ok()))
    {
        Ok(staff) => staff,
        Err(_) => return unauthenticated(),
    };
    let Ok(key) = single(headers, IDEMPOTENCY_KEY) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            ApiError::BadInput("send one Idempotency-Key header, not several".into()),
        );
    };
    let idempotency_key = match idempotency_key(key) {
        Ok(key) => key,
        Err(error) => return error_response(StatusCode::BAD_REQUEST, error),
    };
    if is_multipart(headers.get(header::CONTENT_TYPE)) {
        // async-graphql would spool every file part of such a body to a temporary file, with
        // no limit on their number; the API takes no uploads.
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BadInput(
                "multipart bodies (file uploads) are not accepted: send the request as JSON".into(),
            ),
        );
    }
    let mut request = match GraphQLRequest::<GraphQLRejection>::from_request(http, &state).await {
        Ok(request) => request.into_inner(),
        Err(rejection) => return not_a_request(&rejection.0),
    };
    if let Err(error) = nesting::check(&request.query) {
        let operation = operation_label(request.operation_name.as_deref());
        RequestMetrics::start(&operation).finish(Outcome::Refused);
        return error_response(StatusCode::OK, error);
    }
    DocumentCache::global().prepare(&mut request);
    let operation = operation_label(operation_name(&mut request).as_deref());
    if let Ok(document) = request.parsed_query() {
        if let Err(error) = expansion::check(document) {
            // Counted, so an operator sees documents refused before they run (a client's bug,
            // or someone trying the service's limits).
            RequestMetrics::start(&operation).finish(Outcome::Refused);
            return error_response(StatusCode::OK, error);
        }
    }
    let threshold = state.rules.at_risk_threshold(&staff.clinic);
    let loaders = Loaders::new(state.pool.clone(), staff.clinic.clone(), threshold);
    let context = request_context(staff, &operation, idempotency_key, false);
    tracing::Span::current()
        .record("operation", operation.as_str())
        .record(
            "correlation_id",
            tracing::field::display(context.correlation_id),
        );
    let recorded = RequestMetrics::start(&operation);
    let mut response = state
        .schema
        .execute(request.data(context).data(loaders))
        .await;
    coded(&mut response.errors);
    recorded.finish(if response.errors.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Error
    });
    GraphQLResponse::from(response).into_response()
}

/// How a request ended, as `clinic_graphql_requests_total` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Answered without errors.
    Ok,
    /// Answered with errors.
    Error,
    /// Refused before it ran, as standing for too much.
    Refused,
    /// Never answered: the request timeout cut it, or the client went away.
    Unfinished,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Refused => "refused",
            Self::Unfinished => "unfinished",
        }
    }
}

/// A request's count and duration, recorded when this is dropped: with the outcome the handler
/// gave it, or as [`Outcome::Unfinished`] when the handler's future was dropped first (the
/// timeout layer drops it; so does hyper when the client leaves). Those are the slowest
/// requests, which the metrics must not leave out.
struct RequestMetrics {
    label: String,
    started: Instant,
    outcome: Outcome,
}

impl RequestMetrics {
    fn start(operation: &str) -> Self {
        Self {
            label: metric_label(operation),
            started: Instant::now(),
            outcome: Outcome::Unfinished,
        }
    }

    fn finish(mut self, outcome: Outcome) {
        self.outcome = outcome;
    }
}

impl Drop for RequestMetrics {
    fn drop(&mut self) {
        let label = std::mem::take(&mut self.label);
        metrics::counter!("clinic_graphql_requests_total", "operation" => label.clone(), "outcome" => self.outcome.label())
            .increment(1);
        // A refused document never ran: no duration to speak of.
        if self.outcome != Outcome::Refused {
            metrics::histogram!("clinic_graphql_request_seconds", "operation" => label)
                .record(self.started.elapsed().as_secs_f64());
        }
    }
}

/// `GET /graphql/ws`: subscriptions (only: see [`websocket`]); the token comes in
/// `connection_init`'s payload as `{"authorization": "Bearer <token>"}` (the key in any case:
/// GraphiQL sends its headers tab as typed) or `{"token": "<token>"}`.
pub async fn graphql_ws(
    State(state): State<AppState>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Ok(socket_place) = Arc::clone(&state.sockets).try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many open subscription sockets; try again later",
        )
            .into_response();
    };
    let schema = state.schema.clone();
    let keys = state.keys.clone();
    let staff_sockets = Arc::clone(&state.staff_sockets);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(websocket::MAX_MESSAGE_BYTES)
        .max_frame_size(websocket::MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            let expires_at = Arc::new(OnceLock::new());
            let authorised = Arc::clone(&expires_at);
            let serve =
                GraphQLWebSocket::new(socket, websocket::SubscriptionsOnly(schema), protocol)
                    .on_connection_init(move |payload| async move {
                        let staff =
                            staff_from_init(&keys, &payload).map_err(async_graphql::Error::from)?;
                        let place = staff_sockets
                            .take(&staff)
                            .map_err(async_graphql::Error::from)?;
                        let _ = authorised.set(staff.expires_at);
                        let mut data = Data::default();
                        data.insert(place);
                        data.insert(request_context(staff, "subscription", None, true));
                        data.insert(websocket::Subscriptions::default());
                        Ok(data)
                    })
                    .serve();
            async move {
                websocket::served_while_authorised(serve, expires_at).await;
                drop(socket_place);
            }
        })
}

fn staff_from_init(keys: &TokenKeys, payload: &serde_json::Value) -> Result<Staff, ApiError> {
    // Any spelling of the key, as HTTP headers are read (GraphiQL sends its headers tab as
    // typed); only a string counts.
    let header = payload
        .as_object()
        .and_then(|fields| {
            fields
                .iter()
                .filter(|(key, _)| key.eq_ignore_ascii_case("authorization"))
                .find_map(|(_, value)| value.as_str())
        })
        .map(str::to_owned)
        .or_else(|| {
            payload
                .get("token")
                .and_then(|v| v.as_str())
                .map(|token| format!("Bearer {token}"))
        });
    keys.verify_header(header.as_deref())
        .map_err(|_| ApiError::Unauthenticated)
}

fn request_context(
    staff: Staff,
    operation: &str,
    idempotency_key: Option<String>,
    long_lived: bool,
) -> RequestContext {
    RequestContext {
        staff,
        correlation_id: Uuid::new_v4(),
        operation: operation.to_owned(),
        idempotency_key,
        long_lived,
    }
}

/// The most characters an `Idempotency-Key` may have (a UUID has 36).
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The header that names a request's idempotency key.
const IDEMPOTENCY_KEY: header::HeaderName = header::HeaderName::from_static("idempotency-key");

/// A header's value, if it was sent; `Err` if it was sent more than once.
fn single(
    headers: &header::HeaderMap,
    name: header::HeaderName,
) -> Result<Option<&header::HeaderValue>, SentTwice> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    match values.next() {
        None => Ok(first),
        Some(_) => Err(SentTwice),
    }
}

/// A header that names one thing, sent more than once.
struct SentTwice;

/// The request's `Idempotency-Key`, if it sent one. A key the client meant to send but that
/// cannot name a request (empty, over [`MAX_IDEMPOTENCY_KEY`] characters, or with other than
/// visible ASCII) is refused rather than ignored: ignored, a retry would have run again (a
/// second referral), and an empty key shared by every request would have made each later
/// mutation a "retry" of the first.
fn idempotency_key(header: Option<&header::HeaderValue>) -> Result<Option<String>, ApiError> {
    let Some(header) = header else {
        return Ok(None);
    };
    match header.to_str() {
        Ok(key)
            if !key.is_empty()
                && key.len() <= MAX_IDEMPOTENCY_KEY
                && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(key.to_owned()))
        }
        _ => Err(ApiError::BadInput(format!(
            "the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII \
             characters (a UUID, say)"
        ))),
    }
}

/// The most characters of an operation name kept as a metric label, log field and access-log
/// operation.
const MAX_OPERATION_NAME: usize = 64;

/// The operation name as a metric label, log field and access-log operation: client-chosen, so
/// bounded. A longer name keeps its first [`MAX_OPERATION_NAME`] characters (before, it was
/// logged as `anonymous`, and an auditor lost what little it said); one that is no GraphQL name
/// is `anonymous`.
fn operation_label(name: Option<&str>) -> String {
    match name {
        Some(name)
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            name.chars().take(MAX_OPERATION_NAME).collect()
        }
        _ => "anonymous".to_owned(),
    }
}

/// The most distinct operation names the metrics carry. Each is a time series of its own, and
/// the names are the clients' to choose: past this many, new names count as `other`, so no
/// token holder can grow the metrics without end. (Logs and the access log keep the name.)
const MAX_OPERATION_LABELS: usize = 256;

/// `operation` as a metric label: itself while fewer than [`MAX_OPERATION_LABELS`] names have
/// been seen, `other` for names beyond them.
fn metric_label(operation: &str) -> String {
    static SEEN: OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if seen.contains(operation) || seen.len() < MAX_OPERATION_LABELS {
        seen.insert(operation.to_owned());
        operation.to_owned()
    } else {
        "other".to_owned()
    }
}

/// The name of the operation the request runs: the client's `operationName`, or the name of
/// the document's one named operation (wherever it stands: after a comment or a fragment). The
/// document is parsed here if the cache did not have it, once: execution uses this parse.
fn operation_name(request: &mut async_graphql::Request) -> Option<String> {
    if let Some(name) = &request.operation_name {
        return Some(name.clone());
    }
    match &request.parsed_query().ok()?.operations {
        DocumentOperations::Multiple(operations) if operations.len() == 1 => {
            operations.keys().next().map(ToString::to_string)
        }
        _ => None,
    }
}

/// Every error carries `extensions.code` (service.md): the resolvers' errors have theirs, and
/// what async-graphql answers by itself (a syntax error, an unknown field, a variable of the
/// wrong type, the depth and complexity limits) is the request's fault.
fn coded(errors: &mut [async_graphql::ServerError]) {
    for error in errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", "BAD_USER_INPUT");
        }
    }
}

/// A body that is not a GraphQL request answers like other bad input, as JSON with
/// `BAD_USER_INPUT`, never with the parser's debug text; one that outgrew the body limit while
/// streaming (no `Content-Length` to refuse it by) is 413 like one that announced its size.
fn not_a_request(error: &ParseRequestError) -> Response {
    let too_large = match error {
        ParseRequestError::PayloadTooLarge => true,
        // tower-http's limit on a streamed body surfaces as this read error.
        ParseRequestError::Io(io) => io.to_string().contains("length limit exceeded"),
        _ => false,
    };
    let (status, message) = if too_large {
        (StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE)
    } else {
        (
            StatusCode::BAD_REQUEST,
            "the body is not a GraphQL request: a JSON object with a `query` string, one \
             operation per request (a batch, a JSON array, is not accepted)",
        )
    };
    error_response(status, ApiError::BadInput(message.into()))
}

const TOO_LARGE: &str = "the request body is too large (the limit is 1 MiB)";

/// `POST /graphql` requests that the server's middleware answered before the handler ran, as
/// GraphQL errors with `extensions.code` like every other answer of the endpoint: a body that
/// announced a size over the limit (413; tower-http's limit answers in plain text) and a
/// request that ran out of time (503; the timeout answers with no body). Other routes keep
/// the middleware's answers.
pub async fn refusals_as_graphql_errors(request: Request, next: Next) -> Response {
    let graphql = request.uri().path() == "/graphql";
    let response = next.run(request).await;
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !graphql || json {
        return response;
    }
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BadInput(TOO_LARGE.into()),
        ),
        StatusCode::SERVICE_UNAVAILABLE => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            async_graphql::Error::new(
                "the request ran out of time; a mutation may have been stored: send it again \
                 with the same Idempotency-Key",
            )
            .extend_with(|_, e| e.set("code", "INTERNAL")),
        ),
        _ => response,
    }
}

/// Whether a `Content-Type` names a multipart body.
fn is_multipart(content_type: Option<&header::HeaderValue>) -> bool {
    content_type
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim_start().get(..10))
        .is_some_and(|start| start.eq_ignore_ascii_case("multipart/"))
}

/// 401 with a GraphQL error body carrying `UNAUTHENTICATED`; nothing ran.
fn unauthenticated() -> Response {
    let mut response = error_response(StatusCode::UNAUTHORIZED, ApiError::Unauthenticated);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// A request refused before the schema ran: `status`, and a GraphQL error body with `error`'s
/// message and `extensions.code`, as the schema's own errors read.
fn error_response(status: StatusCode, error: impl Into<async_graphql::Error>) -> Response {
    let error = server_error(error, async_graphql::Pos::default());
    let body = async_graphql::Response::from_errors(vec![error]);
    (status, axum::Json(body)).into_response()
}

/// `error` as the schema reports an error at `pos`, with its `extensions.code`: for refusals
/// made before the schema runs (here, and on the socket).
fn server_error(
    error: impl Into<async_graphql::Error>,
    pos: async_graphql::Pos,
) -> async_graphql::ServerError {
    error.into().into_server_error(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_lets_through_once_per_period() {
        let throttle = Throttle::every(Duration::from_secs(1));
        let start = Instant::now();
        assert!(throttle.due(start));
        assert!(!throttle.due(start + Duration::from_millis(999)));
        assert!(throttle.due(start + Duration::from_secs(1)));
        assert!(!throttle.due(start + Duration::from_millis(1500)));
    }

    #[test]
    fn an_idempotency_key_names_a_request_or_is_refused() {
        let key =
            |raw: &[u8]| idempotency_key(Some(&header::HeaderValue::from_bytes(raw).unwrap()));
        assert_eq!(idempotency_key(None).ok(), Some(None));
        assert_eq!(
            key(b"3f1c2b7e-retry-1").ok(),
            Some(Some("3f1c2b7e-retry-1".to_owned()))
        );
        for refused in [
            &b""[..],
            &b"two words"[..],
            "cl\u{e9}".as_bytes(),
            &[b'k'; 256][..],
        ] {
            assert!(key(refused).is_err(), "{refused:?}");
        }
        assert!(key(&[b'k'; 255]).is_ok());
    }

    #[test]
    fn metric_labels_stop_growing_at_their_cap() {
        let first = metric_label("FirstSeen");
        assert_eq!(first, "FirstSeen");
        for n in 0..MAX_OPERATION_LABELS {
            let _ = metric_label(&format!("Flood{n}"));
        }
        assert_eq!(metric_label("NeverSeenBefore"), "other");
        assert_eq!(
            metric_label("FirstSeen"),
            "FirstSeen",
            "a name seen keeps its label"
        );
    }

    #[test]
    fn operation_labels_are_bounded_names() {
        let name = |query: &str, operation: Option<&str>| {
            let mut request = async_graphql::Request::new(query);
            if let Some(operation) = operation {
                request = request.operation_name(operation);
            }
            operation_name(&mut request)
        };
        let board = Some("Board".to_owned());
        assert_eq!(
            name("  query Board { pipeline { stages { count } } }", None),
            board
        );
        assert_eq!(name("# the board\nquery Board { a }", None), board);
        assert_eq!(
            name("fragment F on Q { a } query Board { ...F }", None),
            board
        );
        assert_eq!(
            name("query A { a } query Board { b }", Some("Board")),
            board
        );
        assert_eq!(name("query A { a } query B { b }", None), None);
        assert_eq!(name("mutation($x: ID!) { a }", None), None);
        assert_eq!(name("{ a }", None), None);
        assert_eq!(operation_label(Some("Board")), "Board");
        assert_eq!(operation_label(Some("drop table; --")), "anonymous");
        let long = format!("Board{}", "_".repeat(200));
        assert_eq!(operation_label(Some(&long)), long[..MAX_OPERATION_NAME]);
        assert_eq!(operation_label(None), "anonymous");
    }
}
