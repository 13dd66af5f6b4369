//! The dashboards' work lists over a simulated clinic: every list that grows pages with
//! cursors and a total, each row once, and agrees with the unpaged form where one exists.

use clinic_graphql::auth::Role;
use clinic_infra::clinic::ClinicId;
use clinic_infra::demo::{self, DemoOptions};
use clinic_infra::event_store::EventStore;
use clinic_infra::keyring::{Keyring, MasterKey};
use clinic_infra::projections::{self, Freshness, ProjectionName};
use clinic_infra::scheduler::Scheduler;
use clinic_tests::{spawn_app_with_key, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;

/// The app over a clinic of `members` simulated over `days` (seeded before it starts), with
/// everything due by now marked and its read models caught up. The app's own scheduler ticks
/// only hourly, so nothing changes the lists while a test pages through them (a check-in
/// falling due meanwhile would).
async fn simulated_clinic(pool: PgPool, members: u32, days: u32) -> TestApp {
    let master_key = MasterKey::generate().0;
    let keyring = Keyring::new(pool.clone(), master_key.clone());
    let options = DemoOptions::new(ClinicId::parse("north").unwrap(), members, days);
    let store = EventStore::new(pool.clone());
    demo::seed_demo(&store, &keyring, &options, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    let app = spawn_app_with_key(pool, master_key, 2190, 3_600_000).await;
    let scheduler = Scheduler::new(EventStore::new(app.pool.clone()), keyring, 1_000);
    let now = time::OffsetDateTime::now_utc();
    loop {
        read_models_caught_up(&app).await;
        let report = scheduler.tick(now).await.unwrap();
        if report.check_ins_missed + report.follow_ups_due + report.failed == 0 {
            return app;
        }
    }
}

async fn read_models_caught_up(app: &TestApp) {
    let last: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let read_models = [ProjectionName::Members, ProjectionName::Groups];
    let fresh = projections::wait_until_caught_up(
        &app.pool,
        &read_models,
        last,
        std::time::Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(fresh, Freshness::CaughtUp);
}

/// Every row of the connection at `field` (with `args`), `first` at a time: the nodes in
/// order, and the total each page reported.
async fn page_through(
    app: &TestApp,
    token: &str,
    field: &str,
    args: &str,
    node: &str,
    first: usize,
) -> (Vec<Value>, Vec<i64>) {
    let query = format!(
        "query($first: Int, $after: String) {{ {field}({args} first: $first, after: $after) {{ \
         totalCount pageInfo {{ hasNextPage endCursor }} edges {{ cursor node {{ {node} }} }} }} }}"
    );
    let (mut nodes, mut totals, mut after) = (Vec::new(), Vec::new(), Value::Null);
    loop {
        let data = app
            .graphql(token, &query, json!({ "first": first, "after": after }))
            .await;
        let page = &data[field];
        let edges = page["edges"].as_array().unwrap();
        assert!(
            edges.len() <= first,
            "{field}: a page holds at most `first`"
        );
        totals.push(page["totalCount"].as_i64().unwrap());
        nodes.extend(edges.iter().map(|e| e["node"].clone()));
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            if let Some(last) = edges.last() {
                assert_eq!(page["pageInfo"]["endCursor"], last["cursor"]);
            }
            return (nodes, totals);
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn work_lists_page_through_every_row_once(pool: PgPool) {
    let app = simulated_clinic(pool, 400, 120).await;
    let clinician = app.token("dr-north", Role::Clinician, "north");

    // Follow-ups due: the contract's whole list and its pages agree.
    let whole = app
        .graphql(
            &clinician,
            "{ followUpsDue(withinDays: 3660) { id dayOffset member { id } } }",
            json!({}),
        )
        .await["followUpsDue"]
        .clone();
    let (paged, totals) = page_through(
        &app,
        &clinician,
        "dueFollowUps",
        "withinDays: 3660,",
        "id dayOffset member { id }",
        7,
    )
    .await;
    assert!(
        paged.len() > 7,
        "the clinic has several pages of follow-ups"
    );
    assert_eq!(Value::Array(paged.clone()), whole);
    assert!(totals.iter().all(|&t| t == paged.len() as i64));
    let counted = app
        .graphql(
            &clinician,
            "{ dueFollowUps(withinDays: 3660, first: 0) { totalCount edges { cursor } \
               pageInfo { hasNextPage } } }",
            json!({}),
        )
        .await["dueFollowUps"]
        .clone();
    assert_eq!(
        counted,
        json!({ "totalCount": paged.len(), "edges": [], "pageInfo": { "hasNextPage": true } }),
        "first: 0 asks only for the total"
    );

    // At risk: `members(atRisk: true)` pages what the deprecated whole list returns.
    let whole = app
        .graphql(&clinician, "{ atRiskMembers { id } }", json!({}))
        .await["atRiskMembers"]
        .clone();
    let (paged, totals) = page_through(&app, &clinician, "members", "atRisk: true,", "id", 5).await;
    assert!(!paged.is_empty());
    assert_eq!(Value::Array(paged.clone()), whole);
    assert!(totals.iter().all(|&t| t == paged.len() as i64));

    // Outreach and attendance flags: small pages give what one big page gives, with the total.
    for (field, node) in [
        ("outreachItems", "member { id } consecutiveMissedCheckIns"),
        (
            "stoppedAttending",
            "member { id } group { id } consecutiveAbsences",
        ),
    ] {
        let (small, totals) = page_through(&app, &clinician, field, "", node, 1).await;
        let (big, _) = page_through(&app, &clinician, field, "", node, 500).await;
        assert!(
            small.len() >= 2,
            "{field}: more than one page ({} rows)",
            small.len()
        );
        assert_eq!(small, big, "{field}");
        assert!(totals.iter().all(|&t| t == small.len() as i64), "{field}");
    }

    // A cursor is only good for the list that handed it out.
    let members_cursor = app
        .graphql(
            &clinician,
            "{ members(first: 1) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await["members"]["pageInfo"]["endCursor"]
        .clone();
    for field in ["outreachItems", "stoppedAttending", "dueFollowUps"] {
        let (code, message) = app
            .graphql_error(
                Some(&clinician),
                &format!("query($after: String) {{ {field}(after: $after) {{ totalCount }} }}"),
                json!({ "after": members_cursor }),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{field}");
        assert!(message.contains("cursor"), "{field}: {message}");
    }
}
