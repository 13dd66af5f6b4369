//! The GraphQL edge: tokens, roles, tenancy, limits and the auditors' operations.

use clinic_graphql::auth::Role;
use clinic_infra::clinic::ClinicId;
use clinic_infra::event_store::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
use clinic_tests::spawn_app;
use futures::StreamExt;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

const EVENTS: &str =
    "query($after: Int, $first: Int) { events(afterPosition: $after, first: $first) {
    edges { cursor node { position streamId version type data actor recordedAt } }
    pageInfo { hasNextPage endCursor } } }";

async fn append(pool: &PgPool, clinic: &str, count: usize) -> StreamId {
    let stream = StreamId::of("member", Uuid::new_v4());
    let events: Vec<NewEvent> = (0..count)
        .map(|n| NewEvent {
            event_id: Uuid::new_v4(),
            event_type: "GoalSet".into(),
            schema_version: 1,
            data: json!({ "n": n }),
            metadata: Metadata {
                actor: format!("staff-of-{clinic}"),
                correlation_id: Uuid::new_v4(),
                causation_id: None,
                request: None,
            },
        })
        .collect();
    EventStore::new(pool.clone())
        .append(
            &ClinicId::parse(clinic).unwrap(),
            &stream,
            ExpectedVersion::Any,
            &events,
        )
        .await
        .unwrap();
    stream
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn requests_without_a_valid_token_are_unauthenticated(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (status, body) = app
        .graphql_raw(None, "{ verifyIntegrity { ok } }", json!({}))
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    let other_secret = clinic_graphql::auth::TokenKeys::new(&secrecy::SecretString::from(
        "some-other-secret-of-length".to_owned(),
    ))
    .sign(
        "x",
        Role::Admin,
        &ClinicId::parse("north").unwrap(),
        time::OffsetDateTime::now_utc(),
        time::Duration::hours(1),
    );
    let expired = app.keys.sign(
        "x",
        Role::Admin,
        &ClinicId::parse("north").unwrap(),
        time::OffsetDateTime::now_utc() - time::Duration::hours(3),
        time::Duration::hours(1),
    );
    // {"alg":"none"} header, admin claims, no signature.
    let unsigned = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
        "eyJzdWIiOiJ4Iiwicm9sZSI6ImFkbWluIiwiY2xpbmljIjoibm9ydGgiLCJleHAiOjQxMDI0NDQ4MDAsImlhdCI6MH0"
    );
    for token in [
        other_secret.as_str(),
        expired.as_str(),
        unsigned.as_str(),
        "garbage",
    ] {
        let (status, body) = app
            .graphql_raw(Some(token), "{ verifyIntegrity { ok } }", json!({}))
            .await;
        assert_eq!(status, 401, "{token}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    }

    // Without a token the body is not even read: a client still sending one is answered.
    let endless = futures::stream::iter([Ok::<_, std::io::Error>(b"{\"query\":".to_vec())])
        .chain(futures::stream::pending());
    let unread = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        app.http
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(endless))
            .send(),
    )
    .await
    .expect("answered without waiting for the body")
    .unwrap();
    assert_eq!(unread.status(), 401);

    // Without a token, a malformed body is unauthenticated too: nothing is looked at first.
    let malformed = app
        .http
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body("{ not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 401);
    assert_eq!(
        malformed
            .headers()
            .get("www-authenticate")
            .map(|v| v.as_bytes()),
        Some(&b"Bearer"[..]),
        "a 401 names its scheme"
    );
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn only_auditors_and_admins_read_the_log(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    append(&pool, "north", 2).await;
    for role in [Role::Auditor, Role::Admin] {
        let data = app
            .graphql(&app.token("a", role, "north"), EVENTS, json!({}))
            .await;
        assert_eq!(data["events"]["edges"].as_array().unwrap().len(), 2);
    }
    for role in [Role::Clinician, Role::Facilitator, Role::Intake] {
        let (code, message) = app
            .graphql_error(Some(&app.token("c", role, "north")), EVENTS, json!({}))
            .await;
        assert_eq!(code, "FORBIDDEN", "{role}: {message}");
        let (code, _) = app
            .graphql_error(
                Some(&app.token("c", role, "north")),
                "{ verifyIntegrity { ok } }",
                json!({}),
            )
            .await;
        assert_eq!(code, "FORBIDDEN");
    }
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn the_log_pages_and_never_shows_another_clinics_events(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let north = append(&pool, "north", 5).await;
    append(&pool, "south", 3).await;
    let auditor = app.token("auditor", Role::Auditor, "north");

    let first = app.graphql(&auditor, EVENTS, json!({ "first": 3 })).await;
    let edges = first["events"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 3);
    assert_eq!(first["events"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(edges[0]["node"]["streamId"], north.as_str());
    assert_eq!(edges[0]["node"]["type"], "GoalSet");
    assert_eq!(edges[0]["node"]["actor"], "staff-of-north");
    assert_eq!(edges[0]["node"]["data"], json!({ "n": 0 }));
    let after: i64 = first["events"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let rest = app
        .graphql(&auditor, EVENTS, json!({ "after": after, "first": 10 }))
        .await;
    let rest = rest["events"]["edges"].as_array().unwrap();
    assert_eq!(rest.len(), 2, "north's remaining two; south's three never");
    assert!(rest.iter().all(|e| e["node"]["streamId"] == north.as_str()));

    let report = app
        .graphql(
            &auditor,
            "{ verifyIntegrity { ok streamsChecked eventsChecked brokenStreams } }",
            json!({}),
        )
        .await;
    assert_eq!(
        report["verifyIntegrity"],
        json!({ "ok": true, "streamsChecked": 1, "eventsChecked": 5, "brokenStreams": [] })
    );
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn bad_requests_get_clear_errors_and_the_service_stays_up(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.token("auditor", Role::Auditor, "north");

    let malformed = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{ not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.expect("a GraphQL error, as JSON");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    // A header that names one thing, sent twice, is refused rather than read as the first.
    let board = || {
        app.http
            .post(app.url("/graphql"))
            .json(&json!({ "query": "{ pipeline { total } }" }))
    };
    let other = app.token("someone-else", Role::Admin, "south");
    let two_tokens = board()
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {other}"))
        .send()
        .await
        .unwrap();
    assert_eq!(two_tokens.status(), 401);
    let two_keys = board()
        .header("idempotency-key", "a")
        .header("idempotency-key", "b");
    let untokened = two_keys.try_clone().unwrap().send().await.unwrap();
    assert_eq!(untokened.status(), 401, "the token is checked first");
    let two_keys = two_keys.bearer_auth(&token).send().await.unwrap();
    assert_eq!(two_keys.status(), 400);
    let body: Value = two_keys.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );

    // A batch is refused as such, before any of it runs.
    let batch = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(
            &json!([{ "query": "{ pipeline { total } }" }, { "query": "{ pipeline { total } }" }]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(batch.status(), 400);
    let body: Value = batch.json().await.unwrap();
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("batch"), "{body}");

    // async-graphql's own refusals carry a code too: an unknown field, a syntax error.
    let (code, message) = app
        .graphql_error(
            Some(&token),
            "{ verifyIntegrity { ok noSuchField } }",
            json!({}),
        )
        .await;
    assert!(message.contains("noSuchField"), "{code}: {message}");
    assert_eq!(code, "BAD_USER_INPUT");
    let (code, _) = app
        .graphql_error(Some(&token), "{ verifyIntegrity {", json!({}))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");

    let (_, body) = app
        .graphql_raw(
            Some(&token),
            "{ events(first: -1) { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("`first`"), "{body}");
    // A negative position is a mistake, not the log's start; a NUL in a name is the caller's
    // mistake, not an internal error (PostgreSQL refuses it in text).
    for (query, variables, argument) in [
        (
            "{ events(afterPosition: -5) { edges { cursor } } }",
            json!({}),
            "afterPosition",
        ),
        (
            "query($c: String) { outreachItems(counselor: $c) { totalCount } }",
            json!({ "c": "dr\u{0}lee" }),
            "counselor",
        ),
    ] {
        let (_, body) = app.graphql_raw(Some(&token), query, variables).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(argument), "{body}");
    }

    let oversize = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(vec![b' '; 12 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(oversize.status(), 413);
    let body: serde_json::Value = oversize.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    // The same body streamed, with no Content-Length to refuse it by.
    let chunks =
        futures::stream::iter((0..12).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024 * 1024])));
    let streamed = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 413);
    let streamed: serde_json::Value = streamed.json().await.unwrap();
    assert_eq!(streamed, body, "both refusals read alike");

    // A multipart body (a file upload) is refused before any part of it is stored.
    let upload = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .header("content-type", "Multipart/form-data; boundary=b")
        .body("--b\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{\"query\":\"{ pipeline { total } }\"}\r\n--b--\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 415);
    let upload: serde_json::Value = upload.json().await.unwrap();
    assert_eq!(
        upload["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{upload}"
    );

    // Answers hold protected health information: no cache may keep them, no browser sniff them.
    let answered = board().bearer_auth(&token).send().await.unwrap();
    assert_eq!(answered.status(), 200);
    let header = |name: &str| {
        answered
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));

    // Deeper than the schema's limit: refused before it runs.
    let deep = format!(
        "{{ __schema {{ types {{ {}name{} }} }} }}",
        "ofType { ".repeat(clinic_graphql::schema::MAX_DEPTH),
        " }".repeat(clinic_graphql::schema::MAX_DEPTH)
    );
    let (_, body) = app.graphql_raw(Some(&token), &deep, json!({})).await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("nested too deep"), "{body}");

    // Within the depth limit but cycling through nested lists: each level multiplies the work,
    // so the complexity limit refuses it before it runs.
    let cycling = "{ groups { edges { node { members { groups { members { groups { members { id } } } } } } } } }";
    let (_, body) = app.graphql_raw(Some(&token), cycling, json!({})).await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("complex"), "{body}");

    // A page weighs its rows: nested lists in each of 500 rows are refused before they run,
    // the same selection over 50 rows runs, and a full page of plain fields runs.
    let nested = |first: u32| {
        format!("{{ members(first: {first}) {{ edges {{ node {{ id groups {{ name members {{ name groups {{ name }} }} }} }} }} }} }}")
    };
    let (_, body) = app.graphql_raw(Some(&token), &nested(500), json!({})).await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("complex"), "{body}");
    let (_, body) = app.graphql_raw(Some(&token), &nested(50), json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    let full_pages = "{ members(first: 500) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id name stage levelOfCare version erased } } } events(first: 1000) { pageInfo { hasNextPage endCursor } edges { cursor node { position streamId version type recordedAt actor data } } } }";
    let (_, body) = app.graphql_raw(Some(&token), full_pages, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    // A facilitators' overview: a page of groups with each session's attendance.
    let overview = "{ groups { totalCount edges { node { id name facilitator sessions { id heldAt topic attendance { status member { id name } } } } } } }";
    let (_, body) = app.graphql_raw(Some(&token), overview, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");

    // A fragment spread eight times, twelve levels deep: a kilobyte standing for 8^12 fields,
    // which validation would walk one by one for hours. Refused at once.
    let mut bomb = String::from("{ pipeline { ...F0 } }");
    for level in 0..12 {
        let spreads = format!("...F{} ", level + 1).repeat(8);
        bomb.push_str(&format!(
            " fragment F{level} on PipelineBoard {{ {spreads}}}"
        ));
    }
    bomb.push_str(" fragment F12 on PipelineBoard { stages { count } }");
    let (_, body) = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        app.graphql_raw(Some(&token), &bomb, json!({})),
    )
    .await
    .expect("answered at once");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("fragments"), "{body}");
    assert!(
        app.metrics()
            .await
            .contains(r#"clinic_graphql_requests_total{operation="anonymous",outcome="refused"}"#),
        "the refusal is counted"
    );

    // 3,000 nested lists in 6 KB: the parser's recursion overflowed its thread's stack, which
    // aborted the process. Refused before it is parsed, and the service answers on.
    let deep = format!(
        "{{ pipeline(x: {}{}) {{ total }} }}",
        "[".repeat(3_000),
        "]".repeat(3_000)
    );
    let (_, body) = app.graphql_raw(Some(&token), &deep, json!({})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("levels deep"), "{body}");

    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn graphiql_and_codegen_tools_can_introspect_the_schema(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.token("intake-ann", Role::Intake, "north");
    let (_, body) = app
        .graphql_raw(
            Some(&token),
            include_str!("introspection.graphql"),
            json!({}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let types = body["data"]["__schema"]["types"].as_array().unwrap();
    assert!(
        types.iter().any(|t| t["name"] == "Member"),
        "the schema's types are listed"
    );
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn graphiql_and_metrics_are_served(pool: PgPool) {
    let app = spawn_app(pool).await;
    let page = app.http.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.starts_with("default-src 'none';"), "{policy}");
    let scripts = policy
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .unwrap();
    assert!(
        !scripts.contains("unsafe") && !scripts.contains("https://unpkg.com "),
        "{policy}"
    );
    let page = page.text().await.unwrap();
    assert!(page.to_lowercase().contains("graphiql"));
    // Every script and stylesheet: ours, or an exact version of a package, with its hash.
    let tags: Vec<&str> = page
        .split('<')
        .filter(|tag| tag.starts_with("script") || tag.starts_with("link"))
        .collect();
    assert_eq!(tags.len(), 5, "{page}");
    for tag in tags {
        if tag.contains("src=\"/graphql/graphiql.js\"") {
            continue;
        }
        let (_, url) = tag.split_once("https://unpkg.com/").expect(tag);
        let version = url.split('@').nth(1).unwrap().split('/').next().unwrap();
        assert!(
            version.split('.').count() == 3 && version.split('.').all(|n| n.parse::<u32>().is_ok()),
            "an exact version: {tag}"
        );
        assert!(tag.contains("integrity=\"sha384-"), "{tag}");
        assert!(tag.contains("crossorigin=\"anonymous\""), "{tag}");
    }
    let script = app
        .http
        .get(app.url("/graphql/graphiql.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(script.text().await.unwrap().contains("\"/graphql/ws\""));

    let token = app.token("auditor", Role::Auditor, "north");
    let (status, _) = app
        .graphql_raw(
            Some(&token),
            "query IntegrityCheck { verifyIntegrity { ok } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("clinic_graphql_requests_total{operation=\"IntegrityCheck\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("clinic_projection_lag_positions{projection=\"members\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("clinic_outbox_pending 0"), "{metrics}");
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn admins_see_undeliverable_emails_of_their_clinic(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let (north, south) = (Uuid::new_v4(), Uuid::new_v4());
    for (clinic, id) in [("north", north), ("south", south)] {
        sqlx::query(
            "INSERT INTO outbox (id, clinic, event_id, event_version, member_id, kind, recipient,
                                 consent_id, status, attempts, next_attempt_at, send_before,
                                 last_error, message_id)
             VALUES ($1, $2, $3, 5, $4, 'follow_up_due', 'someone@example.org', $5, 'dead', 8,
                     now(), now() + interval '14 days', 'smtp 550', $6)",
        )
        .bind(id)
        .bind(clinic)
        .bind(Uuid::new_v4())
        .bind(Uuid::new_v4())
        .bind(Uuid::new_v4())
        .bind(format!("<outbox-{id}@mail.invalid>"))
        .execute(&pool)
        .await
        .unwrap();
    }
    let query = "{ deadLetters { id memberId kind attempts lastError messageId } }";
    let admin = app.token("admin", Role::Admin, "north");
    let data = app.graphql(&admin, query, json!({})).await;
    let letters = data["deadLetters"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "only north's");
    assert_eq!(letters[0]["kind"], "follow_up_due");
    assert_eq!(letters[0]["lastError"], "smtp 550");
    assert_eq!(letters[0]["id"], north.to_string());
    assert_eq!(
        letters[0]["messageId"],
        format!("<outbox-{north}@mail.invalid>")
    );
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let (code, _) = app.graphql_error(Some(&clinician), query, json!({})).await;
    assert_eq!(code, "FORBIDDEN");
    // Auditors read them too; each read names the members in the access log.
    let auditor = app.token("auditor-ana", Role::Auditor, "north");
    let seen = app.graphql(&auditor, query, json!({})).await;
    assert_eq!(seen["deadLetters"], data["deadLetters"]);
    let logged: Vec<String> = sqlx::query_scalar(
        "SELECT actor FROM access_log WHERE category = 'consents' AND $1 = ANY(member_ids) ORDER BY id",
    )
    .bind(letters[0]["memberId"].as_str().map(|id| Uuid::parse_str(id).unwrap()))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(logged, ["admin", "auditor-ana"]);

    // Once the cause is fixed, an admin puts it back in the queue: pending, attempts from 0.
    let requeue = "mutation($id: ID!) { requeueDeadLetter(id: $id) }";
    let (code, _) = app
        .graphql_error(Some(&clinician), requeue, json!({ "id": north }))
        .await;
    assert_eq!(code, "FORBIDDEN");
    let (code, _) = app
        .graphql_error(Some(&admin), requeue, json!({ "id": south }))
        .await;
    assert_eq!(code, "NOT_FOUND", "another clinic's dead letter");
    let data = app.graphql(&admin, requeue, json!({ "id": north })).await;
    assert_eq!(data["requeueDeadLetter"], north.to_string());
    let (status, attempts): (String, i32) =
        sqlx::query_as("SELECT status, attempts FROM outbox WHERE id = $1")
            .bind(north)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("pending", 0));
    let data = app.graphql(&admin, query, json!({})).await;
    assert_eq!(data["deadLetters"], json!([]));
    let (code, _) = app
        .graphql_error(Some(&admin), requeue, json!({ "id": north }))
        .await;
    assert_eq!(code, "NOT_FOUND", "no longer dead");
}

/// `clinic_projection_lag_positions` counts what a projection has yet to apply in the order it
/// reads (transaction, then position): an event whose transaction id is lower than another's
/// and its position higher (a transaction that took its id first and committed last) does not
/// leave the gauge above 0 once the projection is past both.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn projection_lag_reaches_zero_when_commits_come_out_of_position_order(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let note = NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "Noted".into(),
        schema_version: 1,
        data: json!({ "n": 1 }),
        metadata: Metadata {
            actor: "tester".into(),
            correlation_id: Uuid::new_v4(),
            causation_id: None,
            request: None,
        },
    };
    let appended = EventStore::new(pool.clone())
        .append(
            &ClinicId::parse("north").unwrap(),
            &StreamId::of("note", Uuid::new_v4()),
            ExpectedVersion::Any,
            &[note],
        )
        .await
        .unwrap();
    // The other transaction's event, written as such a transaction leaves it: its id below the
    // first's, its position above. (Written directly rather than by holding a transaction open:
    // an open transaction id holds back every commit-safe reader on the server, other tests'
    // included.)
    sqlx::query(
        "INSERT INTO events (transaction_id, clinic, stream_id, version, event_id, type,
                             schema_version, data, metadata, prev_hash, hash)
         SELECT (transaction_id::text::bigint - 1)::text::xid8, 'north', $2, 1, $3, 'Noted', 1,
                '{}', '{}', '\\x', '\\x00'
           FROM events WHERE position = $1",
    )
    .bind(appended.last_position())
    .bind(StreamId::of("note", Uuid::new_v4()).as_str())
    .bind(Uuid::new_v4())
    .execute(&pool)
    .await
    .unwrap();

    let lag = || async {
        app.metrics()
            .await
            .lines()
            .find_map(|line| {
                line.strip_prefix("clinic_projection_lag_positions{projection=\"members\"} ")
            })
            .and_then(|value| value.parse::<f64>().ok())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut last = lag().await;
    while last != Some(0.0) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        last = lag().await;
    }
    assert_eq!(
        last,
        Some(0.0),
        "the members projection applied both events"
    );
}
