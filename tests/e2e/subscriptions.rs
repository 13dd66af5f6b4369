//! Subscriptions over websocket (graphql-transport-ws), token in `connection_init`.

use std::time::Duration;

use clinic_graphql::auth::Role;
use clinic_infra::clinic::ClinicId;
use clinic_infra::event_store::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
use clinic_tests::{spawn_app, spawn_app_with_sockets, TestApp};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a graphql-transport-ws socket at `url`, sending nothing yet.
async fn handshake(url: &str) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

async fn connect(url: String, token: &str) -> (Socket, Value) {
    let mut socket = handshake(&url).await.unwrap();
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    socket.send(Message::text(init.to_string())).await.unwrap();
    let ack = next_json(&mut socket).await;
    (socket, ack)
}

async fn next_json(socket: &mut Socket) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(&text).unwrap(),
            Ok(Some(Ok(Message::Close(frame)))) => {
                return json!({ "type": "closed", "frame": format!("{frame:?}") })
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(error))) => return json!({ "type": "error", "error": error.to_string() }),
            Ok(None) => return json!({ "type": "closed" }),
            Err(_) => return json!({ "type": "timeout" }),
        }
    }
}

/// Whether the server closes `socket` within `patience` (a close frame, an error or its end),
/// whatever it sends before.
async fn closed_within(socket: &mut Socket, patience: Duration) -> bool {
    let closed = async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => continue,
            }
        }
    };
    tokio::time::timeout(patience, closed).await.is_ok()
}

/// Sends `query` over the socket as the graphql-transport-ws operation `id` (a subscription,
/// or a query or mutation run on the socket).
async fn send_operation(socket: &mut Socket, id: &str, query: &str) {
    let message = json!({ "id": id, "type": "subscribe", "payload": { "query": query } });
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// A socket of `app` opened with `token` (its `connection_init` acknowledged) that subscribes
/// to `query` as operation "1".
async fn subscribed(app: &TestApp, token: &str, query: &str) -> Socket {
    let (mut socket, ack) = connect(format!("ws://{}/graphql/ws", app.addr), token).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    send_operation(&mut socket, "1", query).await;
    socket
}

const BOARD: &str = "subscription { pipelineChanged { stages { stage count } } }";

async fn append(store: &EventStore, clinic: &str, stream: &StreamId, event_type: &str) {
    let event = NewEvent {
        event_id: Uuid::new_v4(),
        event_type: event_type.into(),
        schema_version: 1,
        data: json!({}),
        metadata: Metadata {
            actor: "tester".into(),
            correlation_id: Uuid::new_v4(),
            causation_id: None,
            request: None,
        },
    };
    store
        .append(
            &ClinicId::parse(clinic).unwrap(),
            stream,
            ExpectedVersion::Any,
            &[event],
        )
        .await
        .unwrap();
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn events_are_pushed_to_subscribers_of_their_clinic_only(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let token = app.token("auditor", Role::Auditor, "north");
    let mut socket = subscribed(
        &app,
        &token,
        "subscription { events(streamPrefix: \"member-\") { streamId type actor } }",
    )
    .await;

    let store = EventStore::new(pool.clone());
    let (north, south, group) = (
        StreamId::of("member", Uuid::new_v4()),
        StreamId::of("member", Uuid::new_v4()),
        StreamId::of("group", Uuid::new_v4()),
    );
    // The subscription starts at the log's head once it is set up; keep appending until the
    // first event arrives, each time also to another clinic and to a non-matching stream.
    let mut received = None;
    for _ in 0..50 {
        append(&store, "south", &south, "Elsewhere").await;
        append(&store, "north", &group, "NotAMember").await;
        append(&store, "north", &north, "GoalSet").await;
        match tokio::time::timeout(Duration::from_millis(300), next_json(&mut socket)).await {
            Ok(message) => {
                received = Some(message);
                break;
            }
            Err(_) => continue,
        }
    }
    let message = received.expect("an event within 50 rounds");
    assert_eq!(message["type"], "next", "{message}");
    let event = &message["payload"]["data"]["events"];
    assert_eq!(event["streamId"], north.as_str());
    assert_eq!(event["type"], "GoalSet");
    assert_eq!(event["actor"], "tester");
    // Now that the subscription is surely live: another clinic's event and a non-matching
    // stream's, then a match. Only north's member events come (a late one of the rounds
    // above among them), the match last.
    append(&store, "south", &south, "Elsewhere").await;
    append(&store, "north", &group, "NotAMember").await;
    append(&store, "north", &north, "GoalReviewed").await;
    loop {
        let next = next_json(&mut socket).await;
        let event = &next["payload"]["data"]["events"];
        assert_eq!(event["streamId"], north.as_str(), "{next}");
        match event["type"].as_str() {
            Some("GoalReviewed") => break,
            Some("GoalSet") => continue,
            _ => panic!("only north's member events: {next}"),
        }
    }
    let nothing = tokio::time::timeout(Duration::from_millis(300), next_json(&mut socket)).await;
    assert!(nothing.is_err(), "nothing else is pushed: {nothing:?}");
    // Pushed only once the read was logged, naming the member whose stream it is.
    let member = north.as_str().strip_prefix("member-").unwrap();
    let logged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM access_log
          WHERE actor = 'auditor' AND category = 'history' AND $1::uuid = ANY(member_ids)",
    )
    .bind(Uuid::parse_str(member).unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(logged >= 1, "the pushed event is in the access log");
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_subscription_ends_when_its_token_expires(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.keys.sign(
        "auditor",
        Role::Auditor,
        &ClinicId::parse("north").unwrap(),
        time::OffsetDateTime::now_utc(),
        // `exp` is in whole seconds: the token lives 2 to 3 s.
        time::Duration::seconds(3),
    );
    let mut socket = subscribed(&app, &token, BOARD).await;
    let first = next_json(&mut socket).await;
    assert_eq!(first["type"], "next", "the board now: {first}");
    // Nothing changes; at the token's expiry the server completes the subscription.
    let started = std::time::Instant::now();
    let end = next_json(&mut socket).await;
    assert_eq!(end["type"], "complete", "{end}");
    // At the expiry (2 to 3 s after signing), not before it nor long after.
    let waited = started.elapsed();
    assert!(
        waited > Duration::from_millis(1000) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // Nor does the socket run anything else on the expired token.
    send_operation(&mut socket, "2", BOARD).await;
    let answer = next_json(&mut socket).await;
    assert_eq!(
        answer["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{answer}"
    );
    // And a little later the socket itself is closed, giving its place back.
    assert!(
        closed_within(&mut socket, Duration::from_secs(25)).await,
        "the socket outlived its token by 25 s"
    );
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_subscription_without_a_valid_token_is_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (_, answer) = connect(format!("ws://{}/graphql/ws", app.addr), "not-a-token").await;
    // Closed for the token, not timed out or refused for something else.
    assert_eq!(answer["type"], "closed", "{answer}");
    let frame = answer["frame"].as_str().unwrap_or_default();
    assert!(frame.contains("authentication required"), "{answer}");

    let clinician = app.token("c", Role::Clinician, "north");
    let mut socket = subscribed(&app, &clinician, "subscription { events { streamId } }").await;
    let answer = next_json(&mut socket).await;
    assert_eq!(answer["payload"]["data"], Value::Null, "{answer}");
    assert_eq!(
        answer["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{answer}"
    );
}

/// The socket serves subscriptions; a query or mutation sent on it is refused with a pointer
/// to `POST /graphql` (where it gets its loaders, access log and metrics) and writes nothing.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn queries_and_mutations_on_the_socket_are_sent_to_post_graphql(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.token("dr-lee", Role::Clinician, "north");
    for operation in [
        "{ member(id: \"00000000-0000-0000-0000-000000000001\") { name } }",
        "mutation { referMember(name: \"Quinn Example\", source: SELF) { id } }",
    ] {
        let mut socket = subscribed(&app, &token, operation).await;
        let answer = next_json(&mut socket).await;
        let error = &answer["payload"]["errors"][0];
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{answer}");
        assert!(
            error["message"].as_str().unwrap().contains("POST /graphql"),
            "{answer}"
        );
    }
    assert_eq!(app.events_stored().await, 0, "nothing written");
}

/// GraphiQL (4.1.2, the version its page loads) opens the socket with its headers tab as the
/// `connection_init` payload, as typed: `{"Authorization": "Bearer ..."}` beside any other
/// header. That is enough to subscribe from GraphiQL.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn graphiqls_headers_tab_opens_a_socket(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.token("dr-lee", Role::Clinician, "north");
    let mut socket = handshake(&format!("ws://{}/graphql/ws", app.addr))
        .await
        .unwrap();
    let init = json!({ "type": "connection_init", "payload": {
        "Authorization": format!("Bearer {token}"),
        "X-Trace": "graphiql",
    } });
    socket.send(Message::text(init.to_string())).await.unwrap();
    let ack = next_json(&mut socket).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    send_operation(&mut socket, "1", BOARD).await;
    let board = next_json(&mut socket).await;
    assert_eq!(board["type"], "next", "{board}");
    assert!(
        board["payload"]["data"]["pipelineChanged"]["stages"].is_array(),
        "{board}"
    );

    // The key in any case, as HTTP headers are read; a key that is not a string is passed over.
    let mut socket = handshake(&format!("ws://{}/graphql/ws", app.addr))
        .await
        .unwrap();
    let init = json!({ "type": "connection_init", "payload": {
        "authorization": null,
        "AUTHORIZATION": format!("Bearer {token}"),
    } });
    socket.send(Message::text(init.to_string())).await.unwrap();
    let ack = next_json(&mut socket).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn the_pipeline_board_is_pushed_when_it_changes(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.token("dr-lee", Role::Clinician, "north");
    let mut socket = subscribed(&app, &token, BOARD).await;
    let referred = |message: &Value| {
        message["payload"]["data"]["pipelineChanged"]["stages"]
            .as_array()
            .and_then(|stages| stages.iter().find(|s| s["stage"] == "REFERRED"))
            .map(|s| s["count"].as_i64().unwrap_or(-1))
    };
    let first = next_json(&mut socket).await;
    assert_eq!(referred(&first), Some(0), "{first}");

    app.graphql(
        &token,
        "mutation { referMember(name: \"Quinn Example\", source: SELF) { id } }",
        json!({}),
    )
    .await;
    let second = next_json(&mut socket).await;
    assert_eq!(referred(&second), Some(1), "{second}");
}

/// A subscription listens on a connection of its own, outside the API's pool: more open
/// dashboards than the pool has connections (5 in tests, two of them the runners' listeners
/// before) still leave every query its connection.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn open_subscriptions_do_not_take_the_apis_connections(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.token("dr-lee", Role::Clinician, "north");
    let mut sockets = Vec::new();
    for n in 0..8 {
        let mut socket = subscribed(&app, &token, BOARD).await;
        let first = next_json(&mut socket).await;
        assert_eq!(first["type"], "next", "subscription {n}: {first}");
        sockets.push(socket);
    }
    let started = std::time::Instant::now();
    let data = app
        .graphql(&token, "{ pipeline { stages { stage count } } }", json!({}))
        .await;
    assert!(data["pipeline"]["stages"].is_array(), "{data}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A graceful shutdown finishes in-flight requests but does not wait for open dashboards:
/// a subscription lives as long as its client, and would hold the process for hours.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn shutdown_does_not_wait_for_open_subscriptions(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.token("dr-lee", Role::Clinician, "north");
    let mut socket = subscribed(&app, &token, BOARD).await;
    let _ = next_json(&mut socket).await;
    let stopped = tokio::time::timeout(Duration::from_secs(5), app.stop()).await;
    assert!(
        stopped.is_ok(),
        "the shutdown waited for an open subscription"
    );
}

/// A subscription whose reads start failing says so (an `INTERNAL` error), then ends: the
/// client can tell a failure from the normal end at its token's expiry.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_subscription_that_fails_says_so_before_it_ends(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let token = app.token("dr-lee", Role::Clinician, "north");
    let mut socket = subscribed(&app, &token, BOARD).await;
    let first = next_json(&mut socket).await;
    assert_eq!(first["type"], "next", "{first}");
    // The board's table goes away under it: its next read (within the poll interval) fails.
    sqlx::query("ALTER TABLE pipeline_counts RENAME TO pipeline_counts_away")
        .execute(&pool)
        .await
        .unwrap();
    let failed = next_json(&mut socket).await;
    assert_eq!(
        failed["payload"]["errors"][0]["extensions"]["code"], "INTERNAL",
        "{failed}"
    );
    let end = next_json(&mut socket).await;
    assert_eq!(end["type"], "complete", "{end}");
}

/// A socket is bounded: in the size of a message (every one is parsed whole before the token is
/// known), in how long it may stay open without `connection_init`, and in the subscriptions it
/// may hold at once (each reads the database when it wakes).
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_socket_is_bounded_in_what_it_may_hold(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.token("dr-lee", Role::Clinician, "north");
    let url = format!("ws://{}/graphql/ws", app.addr);
    let open = || async { handshake(&url).await.unwrap() };

    // A valid connection_init carrying 100 KiB more: closed, never acknowledged.
    let mut socket = open().await;
    let padded = json!({ "type": "connection_init", "payload": {
        "authorization": format!("Bearer {token}"), "padding": "x".repeat(100 * 1024) } });
    let _ = socket.send(Message::text(padded.to_string())).await;
    let answer = next_json(&mut socket).await;
    assert!(
        matches!(answer["type"].as_str(), Some("closed" | "error")),
        "{answer}"
    );

    // A socket that never sends connection_init is dropped after 10 s.
    let mut silent = open().await;
    assert!(
        closed_within(&mut silent, Duration::from_secs(20)).await,
        "still open after 20 s"
    );

    // Sixteen subscriptions at once; the seventeenth is refused until one completes.
    let mut socket = subscribed(&app, &token, BOARD).await;
    for id in 2..=17 {
        send_operation(&mut socket, &id.to_string(), BOARD).await;
    }
    // The refusal, and each held subscription's first board (so none is still on its way).
    let mut refusal = Value::Null;
    let mut boards = std::collections::HashSet::new();
    while refusal.is_null() || boards.len() < 16 {
        let message = next_json(&mut socket).await;
        assert_ne!(message["type"], "timeout", "no answer for 17 or a board");
        match message["id"].as_str() {
            Some("17") if message["type"] == "complete" => {}
            Some("17") => refusal = message,
            Some(id) => assert!(boards.insert(id.to_owned()), "{message}"),
            None => panic!("{message}"),
        }
    }
    let error = &refusal["payload"]["errors"][0];
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{refusal}");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("at most 16"),
        "{refusal}"
    );
    // Subscribing again on an id in use replaces that subscription, with sixteen held too.
    send_operation(&mut socket, "5", BOARD).await;
    loop {
        let message = next_json(&mut socket).await;
        assert_ne!(message["type"], "timeout", "no answer for 5 again");
        if message["id"] == "5" && message["type"] != "complete" {
            assert_eq!(message["type"], "next", "{message}");
            assert!(message["payload"].get("errors").is_none(), "{message}");
            break;
        }
    }
    let complete = json!({ "id": "1", "type": "complete" });
    socket
        .send(Message::text(complete.to_string()))
        .await
        .unwrap();
    send_operation(&mut socket, "18", BOARD).await;
    loop {
        let message = next_json(&mut socket).await;
        assert_ne!(message["type"], "timeout", "no answer for 18");
        if message["id"] == "18" {
            assert_eq!(message["type"], "next", "{message}");
            assert!(message["payload"].get("errors").is_none(), "{message}");
            break;
        }
    }
}

/// A process serves a bounded number of sockets: past it a handshake is refused (503) until one
/// closes, so one token cannot open sockets without end.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_process_serves_a_bounded_number_of_sockets(pool: PgPool) {
    let app = spawn_app_with_sockets(pool, 2, 2).await;
    let token = app.token("dr-lee", Role::Clinician, "north");
    let url = format!("ws://{}/graphql/ws", app.addr);
    let (first, ack) = connect(url.clone(), &token).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    let (_second, ack) = connect(url.clone(), &token).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    match handshake(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
        }
        other => panic!("a third socket was not refused: {:?}", other.map(|_| ())),
    }
    // One closes; its place is given back.
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match handshake(&url).await {
            Ok(_) => break,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("no place after a socket closed: {error}"),
        }
    }
}

/// One staff member holds a bounded number of sockets, whatever their tokens, so one leaked or
/// looping token cannot take the process's places from everyone else's dashboards.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_staff_member_holds_a_bounded_number_of_sockets(pool: PgPool) {
    let app = spawn_app_with_sockets(pool, 10, 2).await;
    let url = format!("ws://{}/graphql/ws", app.addr);
    let lee = || app.token("dr-lee", Role::Clinician, "north");
    let (first, ack) = connect(url.clone(), &lee()).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    let (_second, ack) = connect(url.clone(), &lee()).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    // A third, even with a token of its own: closed with the reason.
    let (_third, refused) = connect(url.clone(), &lee()).await;
    assert_eq!(refused["type"], "closed", "{refused}");
    assert!(
        refused["frame"]
            .as_str()
            .unwrap_or_default()
            .contains("holds 2 subscription sockets"),
        "{refused}"
    );
    // Others are not held back: another staff member, and dr-lee of another clinic.
    for other in [
        app.token("dr-kim", Role::Clinician, "north"),
        app.token("dr-lee", Role::Clinician, "south"),
    ] {
        let (_socket, ack) = connect(url.clone(), &other).await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
    }
    // One closes; its place is given back.
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_socket, answer) = connect(url.clone(), &lee()).await;
        if answer["type"] == "connection_ack" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no place after a socket closed: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
