//! The HTTP server: routes, middleware (request spans, body limit, timeout) and graceful
//! shutdown. [`app`] builds the router from state so tests serve the real thing on port 0.

use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use clinic_infra::config::ClinicRules;
use clinic_infra::event_store::EventStore;
use clinic_infra::keyring::Keyring;
use clinic_infra::read_models::{BoardCache, MemberPages};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_io_timeout::TimeoutStream;
use tower::ServiceExt as _;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::TokenKeys;
use crate::http_api;
use crate::schema::{self, ClinicSchema, Services};

/// The largest request body accepted; larger ones get 413.
pub const BODY_LIMIT_BYTES: usize = 1024 * 1024;
/// How long a request may run before it is answered with 503. Not 408: that tells a client its
/// request never fully arrived, and HTTP clients resend it by themselves, while a mutation that
/// ran out of time may have been stored (retry it with the same `Idempotency-Key`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What every handler may reach.
#[derive(Clone)]
pub struct AppState {
    /// The database (read models, readiness).
    pub pool: PgPool,
    /// The event log.
    pub store: EventStore,
    /// Staff token verification.
    pub keys: TokenKeys,
    /// The GraphQL schema.
    pub schema: ClinicSchema,
    /// Renders `/metrics`.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// This server's gauges of its database, for `/metrics`.
    pub database_gauges: std::sync::Arc<http_api::DatabaseGauges>,
    /// The clinics' at-risk thresholds and follow-up schedule.
    pub rules: ClinicRules,
    /// How long a request may run ([`REQUEST_TIMEOUT`]; tests shorten it).
    pub request_timeout: Duration,
    /// Places for open websockets ([`http_api::MAX_SOCKETS`]; tests lower it).
    pub sockets: std::sync::Arc<tokio::sync::Semaphore>,
    /// Each staff member's open websockets ([`http_api::MAX_SOCKETS_PER_STAFF`]; tests lower it).
    pub staff_sockets: std::sync::Arc<http_api::StaffSockets>,
    /// The pipeline boards the schema answers from: a handle on the schema's own cache (tests
    /// lengthen its age bound through it; replacing it changes nothing the schema uses).
    pub boards: BoardCache,
    /// The member-list pages the schema answers from, a handle as [`Self::boards`] is.
    pub member_pages: MemberPages,
}

impl AppState {
    /// State over a migrated database.
    pub fn new(
        pool: PgPool,
        keyring: Keyring,
        keys: TokenKeys,
        retention_days: u32,
        rules: ClinicRules,
    ) -> Self {
        // One store for the whole server, so that its appends share group commits.
        let services = Services::new(pool.clone(), keyring, retention_days, rules.clone());
        let store = services.store.clone();
        let boards = services.boards.clone();
        let member_pages = services.member_pages.clone();
        Self {
            schema: schema::build(services),
            metrics: http_api::metrics_handle(),
            database_gauges: std::sync::Arc::default(),
            store,
            pool,
            keys,
            rules,
            request_timeout: REQUEST_TIMEOUT,
            sockets: std::sync::Arc::new(tokio::sync::Semaphore::new(http_api::MAX_SOCKETS)),
            staff_sockets: std::sync::Arc::new(http_api::StaffSockets::new(
                http_api::MAX_SOCKETS_PER_STAFF,
            )),
            boards,
            member_pages,
        }
    }
}

/// The service's router with its middleware.
pub fn app(state: AppState) -> Router {
    let state_timeout = state.request_timeout;
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    Router::new()
        .route("/", get(home))
        .route(
            "/graphql",
            get(http_api::graphiql::page).post(http_api::graphql),
        )
        .route("/graphql/graphiql.js", get(http_api::graphiql::script))
        .route("/graphql/ws", get(http_api::graphql_ws))
        .route("/metrics", get(http_api::metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            state_timeout,
        ))
        .layer(axum::middleware::from_fn(
            http_api::refusals_as_graphql_errors,
        ))
        // Answers carry protected health information (42 CFR Part 2): no cache, shared or in
        // the browser, may keep them; and no browser may read them as anything but their type.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            // Every request in a span: method, path and request id, never the body.
            TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!(
                    "http",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id = %id,
                    // Filled in by the GraphQL handler once it knows them: the operation, and
                    // the correlation id its access-log entries and events carry.
                    operation = tracing::field::Empty,
                    correlation_id = tracing::field::Empty,
                )
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// The address people open first (the README gives it beside its run command): GraphiQL,
/// where staff try the API, rather than a bare 404.
async fn home() -> axum::response::Redirect {
    axum::response::Redirect::temporary("/graphql")
}

/// The process is alive (no dependencies checked: restarting would not help them).
async fn healthz() -> &'static str {
    "ok"
}

/// The database answers and every migration is applied: safe to send traffic here.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if clinic_infra::db::is_ready(&state.pool).await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": "no such route" })),
    )
}

/// How long a client may take to send a request's headers, and how long a kept-alive
/// connection may stay idle before its next request (hyper applies one deadline to both, its own
/// default). Without it, a client trickling a header a byte at a time holds a connection (and a
/// file descriptor) for good: the request timeout only starts once the headers are in. A
/// reverse proxy in front must close idle upstream connections sooner (README "Running it").
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one write to a client may wait for the client to take bytes (a response, a
/// websocket message). Without it a client that stops reading (a slow or malicious reader, a
/// zero TCP window) holds its connection, its task and the unsent answer for as long as TCP keeps
/// probing, which has no end. Each write the client makes room for starts it again: a slow
/// reader is cut only if it frees no room in the socket's send buffer for this long.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long shutdown waits for open connections once it has asked them to finish. Shorter than
/// the request timeout on purpose: orchestrators kill a process some time after SIGTERM
/// (Kubernetes after 30 s by default), and after the connections the background tasks and the
/// outbox must still stop in order and the pool close. A request still running after this is
/// cut (its client retries with its Idempotency-Key); a client that stops reading its answer
/// does not hold the process.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Serves `app` on `listener` until `shutdown` resolves, then stops taking connections, lets
/// in-flight requests finish (up to [`SHUTDOWN_GRACE`]) and returns.
///
/// HTTP/1.1 only, through hyper directly rather than axum's `serve`: axum's sets no timer, and
/// without one hyper applies no header deadline ([`HEADER_READ_TIMEOUT`]); and its HTTP/2
/// detection (hyper-util's auto builder) waits for the first bytes with no deadline at all, and
/// cleartext HTTP/2 then has none either. Browsers never speak cleartext HTTP/2, and a TLS proxy
/// in front speaks HTTP/1.1 to its upstream. Upgrades (the websocket) are served.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(
            app.clone()
                .map_request(|request: axum::http::Request<Incoming>| request.map(Body::new)),
        );
        let mut stream = TimeoutStream::new(stream);
        stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let connection = http
            .serve_connection(TokioIo::new(Box::pin(stream)), service)
            .with_upgrades();
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            let stopped = async { stopping.wait_for(|stop| *stop).await.is_ok() };
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                true = stopped => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%error, "a connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the shutdown grace; closing them"
        );
        connections.abort_all();
    }
    Ok(())
}

/// After a failed accept: at once again when only that connection failed, after a second when
/// the listener itself is in trouble (out of file descriptors, say), as axum's loop does.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%error, "could not accept a connection; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what orchestrators send).
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested: finishing in-flight requests");
}
