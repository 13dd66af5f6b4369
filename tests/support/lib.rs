//! Test support: start the real server on port 0 against a test database and talk to it.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

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
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
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

    /// Asks the server to shut down gracefully and waits until it has.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.server.take().unwrap().await.unwrap()
    }
}

/// Starts the real router on 127.0.0.1:0 over `pool` (already migrated by `sqlx::test`).
pub async fn spawn_app(pool: PgPool) -> TestApp {
    let keys = TokenKeys::new(&SecretString::from(TEST_SECRET.to_owned()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = server::app(AppState::new(pool.clone(), keys.clone()));
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(listener, app, async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        http: reqwest::Client::new(),
        pool,
        keys,
        shutdown: Some(tx),
        server: Some(server),
    }
}
