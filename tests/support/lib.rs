//! Test support: start the real server on port 0 against a test database and talk to it.
#![allow(clippy::unwrap_used)]

use clinic_infra::keyring::{Keyring, MasterKey};
use std::net::SocketAddr;
use std::time::Duration;

use clinic_graphql::auth::{Role, TokenKeys};
use clinic_graphql::server::{self, AppState};
use clinic_infra::clinic::ClinicId;
use secrecy::SecretString;
use sqlx::PgPool;
use tokio::sync::oneshot;

/// The secret every test server signs its tokens with.
pub const TEST_SECRET: &str = "end-to-end-test-secret-0123456789";

/// A running server and what a test needs to reach it.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// An HTTP client.
    pub http: reqwest::Client,
    /// Its database.
    pub pool: PgPool,
    /// Its token keys.
    pub keys: TokenKeys,
    /// Its member data keys (a random master key per app).
    pub keyring: Keyring,
    /// The master key behind `keyring` (a second process of the same deployment has it too).
    pub master_key: MasterKey,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    background: Option<clinic_infra::background::BackgroundTasks>,
    /// The pipeline boards the server answers from.
    pub boards: clinic_infra::read_models::BoardCache,
    /// The member-list pages the server answers from.
    pub member_pages: clinic_infra::read_models::MemberPages,
}

impl TestApp {
    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// How many events the log holds: what a refused request must leave unchanged.
    pub async fn events_stored(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// What `GET /metrics` shows now (Prometheus text).
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A token for `sub` with `role` in `clinic`, valid for an hour.
    pub fn token(&self, sub: &str, role: Role, clinic: &str) -> String {
        self.keys.sign(
            sub,
            role,
            &ClinicId::parse(clinic).unwrap(),
            time::OffsetDateTime::now_utc(),
            time::Duration::hours(1),
        )
    }

    /// Sends a GraphQL request with `token` (none: anonymous) and returns the HTTP status and
    /// the JSON body.
    pub async fn graphql_raw(
        &self,
        token: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .http
            .post(self.url("/graphql"))
            .json(&serde_json::json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// Sends a GraphQL request with `token` and an `Idempotency-Key`; returns the JSON body.
    pub async fn graphql_keyed(
        &self,
        token: &str,
        key: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        self.http
            .post(self.url("/graphql"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(&serde_json::json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Sends a GraphQL request that must succeed; returns its `data`.
    pub async fn graphql(
        &self,
        token: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let (status, body) = self.graphql_raw(Some(token), query, variables).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Sends a GraphQL request that must fail; returns its first error's `extensions.code`
    /// and message.
    pub async fn graphql_error(
        &self,
        token: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> (String, String) {
        let (_, body) = self.graphql_raw(token, query, variables).await;
        let error = &body["errors"][0];
        assert!(!error.is_null(), "expected an error: {body}");
        (
            error["extensions"]["code"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
            error["message"].as_str().unwrap_or("").to_owned(),
        )
    }

    /// Asks the server to shut down gracefully and waits until it has.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let served = self.server.take().unwrap().await.unwrap();
        if let Some(background) = self.background.take() {
            background.stop().await;
        }
        served
    }
}

/// Starts the real router on 127.0.0.1:0 over `pool` (already migrated by `sqlx::test`), with
/// the projection runners and the scheduler (tick 100 ms), as `clinic serve` runs them.
pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with_retention(pool, 2190).await
}

/// [`spawn_app`] with a retention period of `retention_days` (0: treatment records may be
/// erased as soon as the member is discharged).
pub async fn spawn_app_with_retention(pool: PgPool, retention_days: u32) -> TestApp {
    spawn_app_with_key(pool, MasterKey::generate().0, retention_days, 100).await
}

/// [`spawn_app_with_retention`] under `master_key`, its scheduler ticking every
/// `scheduler_tick_ms`: for a log written before the app starts (its scheduler would
/// otherwise append to the streams a seeding is still writing), and for tests that run the
/// scheduler themselves.
pub async fn spawn_app_with_key(
    pool: PgPool,
    master_key: MasterKey,
    retention_days: u32,
    scheduler_tick_ms: u64,
) -> TestApp {
    start(
        pool,
        master_key,
        retention_days,
        scheduler_tick_ms,
        server::REQUEST_TIMEOUT,
        &[],
    )
    .await
}

/// [`spawn_app`] with these environment variables set in its configuration (the clinical
/// rules, say).
pub async fn spawn_app_with_env(pool: PgPool, env: &[(&str, &str)]) -> TestApp {
    start(
        pool,
        MasterKey::generate().0,
        2190,
        100,
        server::REQUEST_TIMEOUT,
        env,
    )
    .await
}

/// [`spawn_app`] whose requests run out of time after `request_timeout`.
pub async fn spawn_app_with_timeout(pool: PgPool, request_timeout: Duration) -> TestApp {
    start(
        pool,
        MasterKey::generate().0,
        2190,
        100,
        request_timeout,
        &[],
    )
    .await
}

/// [`spawn_app`] that serves at most `sockets` websockets at once, and `per_staff` to one
/// staff member.
pub async fn spawn_app_with_sockets(pool: PgPool, sockets: usize, per_staff: usize) -> TestApp {
    start_with(pool, MasterKey::generate().0, 2190, 100, &[], |state| {
        state.sockets = std::sync::Arc::new(tokio::sync::Semaphore::new(sockets));
        state.staff_sockets =
            std::sync::Arc::new(clinic_graphql::http_api::StaffSockets::new(per_staff));
    })
    .await
}

/// [`spawn_app`] whose in-memory copies of read models (pipeline boards, member pages) only its
/// own writes can drop: they never expire, and no projection commit is announced (the
/// checkpoints' NOTIFY trigger is dropped), so only a mutation's read-your-writes wait (or a
/// lost LISTEN connection) makes it read them again. Returns once the copies are kept (the
/// server listens). Its retention is 0, so a test may erase a discharged member.
pub async fn spawn_app_keeping_copies(pool: PgPool) -> TestApp {
    sqlx::query("DROP TRIGGER projection_checkpoints_notify ON projection_checkpoints")
        .execute(&pool)
        .await
        .unwrap();
    let app = start_with(pool, MasterKey::generate().0, 0, 100, &[], |state| {
        state.boards.set_max_age(Duration::from_secs(3600));
        state.member_pages.set_max_age(Duration::from_secs(3600));
    })
    .await;
    for _ in 0..2000 {
        if app.boards.is_listening() && app.member_pages.is_listening() {
            return app;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the server never heard commits");
}

/// A second process of the same deployment serving the API only: no projection runners and no
/// scheduler, so nothing but its requests touches its keyring.
pub async fn spawn_api_only(pool: PgPool, master_key: MasterKey) -> TestApp {
    let mut app = start(pool, master_key, 0, 100, server::REQUEST_TIMEOUT, &[]).await;
    if let Some(background) = app.background.take() {
        background.stop().await;
    }
    app
}

async fn start(
    pool: PgPool,
    master_key: MasterKey,
    retention_days: u32,
    scheduler_tick_ms: u64,
    request_timeout: Duration,
    env: &[(&str, &str)],
) -> TestApp {
    start_with(
        pool,
        master_key,
        retention_days,
        scheduler_tick_ms,
        env,
        |state| state.request_timeout = request_timeout,
    )
    .await
}

async fn start_with(
    pool: PgPool,
    master_key: MasterKey,
    retention_days: u32,
    scheduler_tick_ms: u64,
    env: &[(&str, &str)],
    adjust: impl FnOnce(&mut AppState),
) -> TestApp {
    let config = clinic_infra::config::Config::from_lookup(|name| {
        if name == "CLINIC_SCHEDULER_TICK_MS" {
            return Some(scheduler_tick_ms.to_string());
        }
        env.iter()
            .find(|(variable, _)| *variable == name)
            .map(|(_, value)| (*value).to_owned())
    })
    .unwrap();
    let keyring = Keyring::new(pool.clone(), master_key.clone());
    let background = clinic_infra::background::BackgroundTasks::start(&pool, &keyring, &config);
    let keys = TokenKeys::new(&SecretString::from(TEST_SECRET.to_owned()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut state = AppState::new(
        pool.clone(),
        keyring.clone(),
        keys.clone(),
        retention_days,
        config.rules.clone(),
    );
    adjust(&mut state);
    let boards = state.boards.clone();
    let member_pages = state.member_pages.clone();
    let app = server::app(state);
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(listener, app, async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        http: reqwest::Client::new(),
        pool,
        keys,
        keyring,
        master_key,
        shutdown: Some(tx),
        server: Some(server),
        background: Some(background),
        boards,
        member_pages,
    }
}
