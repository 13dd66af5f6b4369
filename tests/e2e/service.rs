//! The service shell: health, readiness, limits and shutdown.

use std::time::Duration;

use clinic_graphql::auth::Role;
use clinic_graphql::server;
use clinic_infra::keyring::MasterKey;
use clinic_tests::{spawn_api_only, spawn_app, spawn_app_with_timeout};
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn health_and_readiness_answer_when_the_database_is_migrated(pool: PgPool) {
    let app = spawn_app(pool).await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap(), "ready");
    app.stop().await.unwrap();
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn the_root_leads_to_graphiql(pool: PgPool) {
    let app = spawn_app(pool).await;
    let not_following = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = not_following.get(app.url("/")).send().await.unwrap();
    assert_eq!(root.status(), 307);
    assert_eq!(root.headers()["location"], "/graphql");
    // Followed, it is the GraphiQL page.
    let page = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.url().path(), "/graphql");
    assert!(page.text().await.unwrap().contains("graphiql"));
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn readiness_fails_when_migrations_are_missing(pool: PgPool) {
    sqlx::query("DELETE FROM _sqlx_migrations")
        .execute(&pool)
        .await
        .unwrap();
    let app = spawn_app(pool).await;
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn unknown_routes_and_oversize_bodies_get_clear_answers(pool: PgPool) {
    let app = spawn_app(pool).await;
    let missing = app.http.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().contains_key("x-request-id"));
    let body = vec![b'x'; 2 * 1024 * 1024];
    let oversize = app
        .http
        .post(app.url("/healthz"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(oversize.status(), 413);
    // The service is still up.
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn shutdown_stops_taking_connections(pool: PgPool) {
    let app = spawn_app(pool).await;
    let url = app.url("/healthz");
    let http = app.http.clone();
    app.stop().await.unwrap();
    assert!(http.get(url).send().await.is_err(), "no longer listening");
}

/// A client trickling its headers (slowloris), or connecting and sending nothing, is cut off
/// once the header deadline (30 s) passes, instead of holding its connection for good; a prompt
/// client on the same server is served meanwhile.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_request_whose_headers_never_end_is_cut_off(pool: PgPool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app(pool).await;
    let started: [&[u8]; 3] = [
        b"POST /graphql HTTP/1.1\r\nHost: clinic\r\nX-Slow: a",
        // The first byte of an HTTP/2 preface: a server that waited to tell the versions
        // apart had no deadline there.
        b"P",
        b"",
    ];
    let mut slow = Vec::new();
    for bytes in started {
        let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        slow.push(stream);
    }
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // 45 s is the test's patience.
    let ended = futures::future::join_all(slow.iter_mut().map(|stream| async {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(45), stream.read_to_end(&mut rest))
            .await
            .is_ok()
    }))
    .await;
    assert_eq!(ended, [true, true, true], "each connection is closed");
    app.stop().await.unwrap();
}

/// A client that stops reading its answers (here: pipelined requests and a tiny receive window)
/// is cut off once one write has waited for the write deadline (30 s), instead of holding its
/// connection, its task and the unsent answers for as long as TCP keeps probing; a prompt
/// client on the same server is served meanwhile.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_client_that_stops_reading_is_cut_off(pool: PgPool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app(pool).await;
    let one = app.metrics().await.len();
    // Enough answers to fill the client's receive buffer and the server's send buffer (at most
    // 4 MiB by Linux's defaults) several times over.
    let requests = (16 << 20) / one + 1;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(app.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let pipelined = b"GET /metrics HTTP/1.1\r\nHost: clinic\r\n\r\n".repeat(requests);
    // The server stops reading requests while its answers wait: write from a task of its own.
    let sending = tokio::spawn(async move {
        let _ = writer.write_all(&pipelined).await;
        writer
    });

    tokio::time::sleep(Duration::from_secs(5)).await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "served while the other waits");
    tokio::time::sleep(server::WRITE_TIMEOUT).await;

    let mut received = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(15), reader.read_to_end(&mut received))
        .await
        .is_ok();
    assert!(ended, "the connection is still open");
    assert!(
        received.len() < requests * one,
        "every answer arrived ({} bytes): nothing was cut",
        received.len()
    );
    sending.abort();
    app.stop().await.unwrap();
}

/// A request that runs out of time is answered 503 with a GraphQL error carrying
/// `extensions.code` and saying how to retry safely, like the endpoint's other answers, not an
/// empty body; the service goes on.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_request_that_runs_out_of_time_gets_a_coded_graphql_error(pool: PgPool) {
    let app = spawn_app_with_timeout(pool.clone(), Duration::from_millis(300)).await;
    let token = app.token("dana", Role::Clinician, "north");
    let board = "query TimedOutBoard { pipeline { stages { stage count } } }";
    // The board's read model held, so its query waits. A table lock takes no transaction id:
    // the projections (and other tests' servers) read the log on.
    let mut hold = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE pipeline_counts IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *hold)
        .await
        .unwrap();
    let (status, body) = app.graphql_raw(Some(&token), board, json!({})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "INTERNAL",
        "{body}"
    );
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("Idempotency-Key"), "{body}");
    hold.rollback().await.unwrap();
    // The slowest requests are in the metrics too.
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            r#"clinic_graphql_requests_total{operation="TimedOutBoard",outcome="unfinished"} 1"#
        ),
        "{metrics}"
    );

    let data = app.graphql(&token, board, json!({})).await;
    assert!(data["pipeline"]["stages"].is_array(), "{data}");
    app.stop().await.unwrap();
}

/// When the read models lag behind the log (a rebuild, a stalled runner: here no runner at
/// all), a mutation still stores its events and says so, so the client reads the record again
/// instead of repeating the mutation.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_mutation_the_read_models_lag_behind_says_it_was_stored(pool: PgPool) {
    let app = spawn_api_only(pool.clone(), MasterKey::generate().0).await;
    let token = app.token("intake-ann", Role::Intake, "north");
    let (_, body) = app
        .graphql_raw(
            Some(&token),
            "mutation { referMember(name: \"Robin\", source: SELF) { id } }",
            json!({}),
        )
        .await;
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "INTERNAL", "{body}");
    assert_eq!(error["extensions"]["stored"], true, "{body}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("recorded") && message.contains("do not repeat"),
        "{message}"
    );
    let referrals: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE type = 'MemberReferred'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(referrals, 1, "the referral is in the log");
    app.stop().await.unwrap();
}
