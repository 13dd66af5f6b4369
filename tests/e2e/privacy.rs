//! Privacy of substance-use records: crypto-shredding, retention, 42 CFR 2.31 consents, the
//! accounting of disclosures, break-glass reads.

use clinic_domain::MemberId;
use clinic_graphql::auth::Role;
use clinic_infra::projections::{self, ProjectionName, ProjectionOptions, RebuildOptions};
use clinic_tests::{
    spawn_api_only, spawn_app, spawn_app_keeping_copies, spawn_app_with_retention, TestApp,
};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

/// Distinctive enough that finding it anywhere means it leaked.
const NAME: &str = "Zephyrine Quillfeather";
const EMAIL: &str = "zephyrine.quillfeather@example.org";
const PHONE: &str = "+1 555 013 7788";

async fn refer(app: &TestApp, token: &str, name: &str, email: &str) -> String {
    let data = app
        .graphql(
            token,
            "mutation($n: String!, $e: String!, $p: String!) { referMember(name: $n, email: $e, phone: $p, source: SELF) { id } }",
            json!({ "n": name, "e": email, "p": PHONE }),
        )
        .await;
    data["referMember"]["id"].as_str().unwrap().to_owned()
}

async fn run(app: &TestApp, token: &str, mutation: &str, id: &str) -> Value {
    app.graphql(
        token,
        &format!("mutation($id: ID!) {{ {mutation} }}"),
        json!({ "id": id }),
    )
    .await
}

/// The access log's entries of `actor`'s reads of `member`, as (operation, category) pairs in
/// order, read by an `auditor`.
async fn reads_logged(
    app: &TestApp,
    auditor: &str,
    actor: &str,
    member: &str,
) -> Vec<(String, String)> {
    let log = app
        .graphql(auditor, "query($id: ID!) { accessLog(memberId: $id, first: 100) { edges { node { actor operation category } } } }", json!({ "id": member }))
        .await;
    let mut entries: Vec<(String, String)> = log["accessLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["actor"] == actor)
        .map(|e| {
            let node = &e["node"];
            (
                node["operation"].as_str().unwrap().to_owned(),
                node["category"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    entries.sort();
    entries
}

/// Admits a referred `member` and puts them on the roster of a new skills group (run by
/// `facilitator`, if named); the group's id.
async fn in_a_skills_group(
    app: &TestApp,
    token: &str,
    member: &str,
    facilitator: Option<&str>,
) -> Value {
    for step in [
        "completeIntake(memberId: $id, recommendedLevel: OUTPATIENT) { id }",
        "admitMember(memberId: $id, levelOfCare: OUTPATIENT) { id }",
    ] {
        run(app, token, step, member).await;
    }
    let group = app
        .graphql(
            token,
            "mutation($f: String) { formGroup(name: \"Skills\", model: SKILLS_DEVELOPMENT, facilitator: $f) { id } }",
            json!({ "f": facilitator }),
        )
        .await["formGroup"]["id"]
        .clone();
    app.graphql(
        token,
        "mutation($g: ID!, $m: ID!) { joinGroup(groupId: $g, memberId: $m) { id } }",
        json!({ "g": group, "m": member }),
    )
    .await;
    group
}

/// Referred, consenting to email, admitted and discharged (completed): in aftercare, with a
/// welcome email queued.
async fn discharged(app: &TestApp, token: &str) -> String {
    let id = refer(app, token, NAME, EMAIL).await;
    run(
        app,
        token,
        "giveConsent(memberId: $id, scope: EMAIL_OUTREACH) { id }",
        &id,
    )
    .await;
    run(
        app,
        token,
        "completeIntake(memberId: $id, recommendedLevel: OUTPATIENT) { id }",
        &id,
    )
    .await;
    run(
        app,
        token,
        "admitMember(memberId: $id, levelOfCare: OUTPATIENT) { id }",
        &id,
    )
    .await;
    run(
        app,
        token,
        "dischargeMember(memberId: $id, reason: COMPLETED) { id }",
        &id,
    )
    .await;
    id
}

/// Every projection the service runs, the outbox included, applied up to the log's end.
async fn project_everything(app: &TestApp) {
    let last: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let all = [
        ProjectionName::Members,
        ProjectionName::Groups,
        ProjectionName::Outbox,
    ];
    for _ in 0..500 {
        for projection in all {
            projections::catch_up(
                &app.pool,
                &app.keyring,
                projection,
                &ProjectionOptions::default(),
            )
            .await
            .unwrap();
        }
        let fresh =
            projections::wait_until_caught_up(&app.pool, &all, last, std::time::Duration::ZERO)
                .await
                .unwrap();
        if fresh == projections::Freshness::CaughtUp {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the projections did not catch up");
}

/// The database as `pg_dump` writes it: everything a stolen backup would hold.
async fn pg_dump(pool: &PgPool) -> String {
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let base = dotenvy::var("DATABASE_URL").unwrap();
    let (server, _) = base.rsplit_once('/').unwrap();
    let output = std::process::Command::new("pg_dump")
        .arg(format!("{server}/{name}"))
        .output()
        .expect("pg_dump is installed (PostgreSQL client)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The readable forms a secret could take in a dump: as is, any case, base64 and hex.
fn leaks(dump: &str, secret: &str) -> Vec<&'static str> {
    use base64::Engine as _;
    let lower = dump.to_lowercase();
    let mut found = Vec::new();
    if lower.contains(&secret.to_lowercase()) {
        found.push("plain");
    }
    // Inside a longer base64 text the secret starts at any of three byte offsets; each gives a
    // stable run of characters once the partial first and last groups are dropped.
    for offset in 0..3 {
        let padded = format!("{}{secret}", "\0".repeat(offset));
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(padded);
        let skip = if offset == 0 { 0 } else { 4 };
        let core = &encoded[skip..encoded.len() - 4];
        if dump.contains(core) {
            found.push("base64");
        }
    }
    if lower.contains(&hex_of(secret)) {
        found.push("hex");
    }
    found
}

fn hex_of(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn personal_fields_are_sealed_in_the_log_and_opened_for_staff(pool: PgPool) {
    let app = spawn_app(pool).await;
    let intake = app.token("front-desk", Role::Intake, "north");
    let id = refer(&app, &intake, NAME, EMAIL).await;

    let stored: String =
        sqlx::query_scalar("SELECT data::text FROM events WHERE type = 'MemberReferred'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        !stored.contains("Zephyrine") && !stored.contains("zephyrine"),
        "{stored}"
    );
    assert!(stored.contains("\"name\": \"enc:v1:"), "{stored}");
    assert!(
        stored.contains("\"source\": \"self\""),
        "non-personal fields stay queryable: {stored}"
    );

    let admin = app.token("admin-ada", Role::Admin, "north");
    let read = app
        .graphql(&admin, "query($id: ID!) { member(id: $id) { name erased history(first: 10) { edges { node { type data } } } } }", json!({ "id": id }))
        .await;
    assert_eq!(read["member"]["name"], NAME);
    assert_eq!(read["member"]["erased"], false);
    let referred = &read["member"]["history"]["edges"][0]["node"];
    assert_eq!(referred["data"]["name"], NAME);
    assert_eq!(referred["data"]["email"], EMAIL);
    // The log-wide view shows the stored form.
    let log = app
        .graphql(
            &admin,
            "{ events(first: 10) { edges { node { data } } } }",
            json!({}),
        )
        .await;
    assert!(log["events"]["edges"][0]["node"]["data"]["name"]
        .as_str()
        .unwrap()
        .starts_with("enc:v1:"));
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn each_mutation_of_a_document_answers_with_the_record_as_it_left_it(pool: PgPool) {
    // A request loads a member's record once for the fields that read it, and again after
    // each of its writes: three mutations in one document each show their own change.
    let app = spawn_app(pool).await;
    let admin = app.token("admin-ada", Role::Admin, "north");
    let id = refer(&app, &admin, NAME, EMAIL).await;
    let shown = app
        .graphql(
            &admin,
            "mutation($id: ID!, $one: String, $two: String) {
               first: changeMemberDetails(memberId: $id, phone: $one) { contact { phone } consents { scope } }
               second: giveConsent(memberId: $id, scope: EMAIL_OUTREACH) { contact { phone } consents { scope } }
               third: changeMemberDetails(memberId: $id, phone: $two) { contact { phone } consents { scope } }
             }",
            json!({ "id": id, "one": "+1 555 010 0001", "two": "+1 555 010 0002" }),
        )
        .await;
    assert_eq!(
        shown,
        json!({
            "first": { "contact": { "phone": "+1 555 010 0001" }, "consents": [] },
            "second": {
                "contact": { "phone": "+1 555 010 0001" },
                "consents": [{ "scope": "EMAIL_OUTREACH" }]
            },
            "third": {
                "contact": { "phone": "+1 555 010 0002" },
                "consents": [{ "scope": "EMAIL_OUTREACH" }]
            }
        })
    );
}

/// Sets every `north` member's name in the summaries behind the projections' back.
async fn rename_by_hand(pool: &PgPool, name: &str) {
    sqlx::query("UPDATE member_summaries SET name = $1 WHERE clinic = 'north'")
        .bind(name)
        .execute(pool)
        .await
        .unwrap();
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn an_erasure_drops_the_member_pages_that_named_the_member(pool: PgPool) {
    // The server answers member pages from memory until their projections commit. Without the
    // checkpoint's NOTIFY, and with copies that never expire, only the erasure's own
    // read-your-writes wait can drop the page: the list read right after it must not name the
    // member, and the name must leave the server's memory.
    let app = spawn_app_keeping_copies(pool.clone()).await;
    let admin = app.token("admin-ada", Role::Admin, "north");
    let id = discharged(&app, &admin).await;
    const LIST: &str = "{ members(first: 10) { edges { node { id name erased } } } }";
    let listed = |data: Value| data["members"]["edges"][0]["node"].clone();
    let before = listed(app.graphql(&admin, LIST, json!({})).await);
    assert_eq!((&before["id"], &before["name"]), (&json!(id), &json!(NAME)));
    // The copy is in use: a change nothing announces is not seen.
    rename_by_hand(&pool, "Someone Else").await;
    assert_eq!(
        listed(app.graphql(&admin, LIST, json!({})).await)["name"],
        NAME
    );
    rename_by_hand(&pool, NAME).await;
    // Another page naming the member, not read again after the erasure.
    const SHORTER: &str = "{ members(first: 5) { edges { node { name } } } }";
    assert_eq!(
        listed(app.graphql(&admin, SHORTER, json!({})).await)["name"],
        NAME
    );
    assert_eq!(app.member_pages.kept(), 2, "both pages are kept");

    let erased = run(
        &app,
        &admin,
        "eraseMember(memberId: $id, reason: \"member request\")",
        &id,
    )
    .await;
    assert_eq!(erased["eraseMember"], true);
    let after = listed(app.graphql(&admin, LIST, json!({})).await);
    assert_eq!(after["erased"], true);
    assert_eq!(after["name"], "(erased)");
    // The other page that named the member leaves memory unread: at most the page read after
    // the erasure is held, within two sweeps (20 s allowed on a loaded machine).
    let started = std::time::Instant::now();
    while app.member_pages.held() > 1 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "a page read before the erasure is still held"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn an_erased_members_open_follow_ups_leave_the_staff_lists(pool: PgPool) {
    // Nobody may record an outcome for an erased member (the domain refuses every command),
    // so their open follow-ups would stay on the work list for good.
    let app = spawn_app_with_retention(pool, 0).await;
    let admin = app.token("admin-ada", Role::Admin, "north");
    let kept = discharged(&app, &admin).await;
    let erased = discharged(&app, &admin).await;
    let listed = || async {
        let lists = app
            .graphql(
                &admin,
                "{ followUpsDue(withinDays: 3660) { member { id } } \
                   dueFollowUps(withinDays: 3660, first: 100) { totalCount edges { node { member { id } } } } }",
                json!({}),
            )
            .await;
        let whole: std::collections::BTreeSet<String> = lists["followUpsDue"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["member"]["id"].as_str().unwrap().to_owned())
            .collect();
        let paged: std::collections::BTreeSet<String> = lists["dueFollowUps"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["member"]["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(whole, paged);
        (whole, lists["dueFollowUps"]["totalCount"].as_i64().unwrap())
    };
    let (before, total_before) = listed().await;
    assert_eq!(before, [kept.clone(), erased.clone()].into_iter().collect());

    run(
        &app,
        &admin,
        "eraseMember(memberId: $id, reason: \"member request\")",
        &erased,
    )
    .await;
    let (after, total_after) = listed().await;
    assert_eq!(after, [kept].into_iter().collect());
    assert_eq!(
        total_after * 2,
        total_before,
        "the total counts what is listed"
    );
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn erasing_a_member_leaves_nothing_readable_and_the_log_intact(pool: PgPool) {
    let app = spawn_app_with_retention(pool, 0).await;
    let admin = app.token("admin-ada", Role::Admin, "north");
    let id = discharged(&app, &admin).await;
    project_everything(&app).await;
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE recipient = $1")
        .bind(EMAIL)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(
        queued >= 1,
        "the welcome email is queued to the member's address"
    );
    let emails_query = "query($id: ID!) { member(id: $id) { consents { id } emails { kind status consentId cancelReason } } }";
    let before = app.graphql(&admin, emails_query, json!({ "id": id })).await;
    let email = &before["member"]["emails"][0];
    assert_eq!(email["kind"], "aftercare_welcome");
    assert_eq!(email["status"], "pending");
    assert_eq!(
        email["consentId"], before["member"]["consents"][0]["id"],
        "each email names the consent that allowed it"
    );
    // Before the erasure the read models hold the name (the dashboards show it); the dump
    // proves the test would see it.
    assert_eq!(leaks(&pg_dump(&app.pool).await, NAME), ["plain"]);

    let erased = app
        .graphql(
            &admin,
            "mutation($id: ID!) { eraseMember(memberId: $id, reason: \"member request\") }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(erased["eraseMember"], true);
    project_everything(&app).await;

    let read = app
        .graphql(&admin, "query($id: ID!) { member(id: $id) { name erased stage history(first: 50) { edges { node { type data } } } } }", json!({ "id": id }))
        .await;
    assert_eq!(read["member"]["erased"], true);
    assert_eq!(read["member"]["name"], "(erased)");
    assert_eq!(read["member"]["stage"], "AFTERCARE", "outcomes stay");
    let history = read["member"]["history"]["edges"].as_array().unwrap();
    let types: Vec<&str> = history
        .iter()
        .map(|e| e["node"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"MemberReferred"));
    assert_eq!(types.last(), Some(&"MemberErased"));
    assert_eq!(history[0]["node"]["data"]["name"], "(erased)");
    assert_eq!(history[0]["node"]["data"]["email"], "(erased)");

    let dump = pg_dump(&app.pool).await;
    for secret in [NAME, EMAIL, PHONE] {
        assert_eq!(
            leaks(&dump, secret),
            Vec::<&str>::new(),
            "{secret} in the dump"
        );
    }
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE member_id = $1 AND (status = 'pending' OR recipient IS NOT NULL)",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(pending, 0, "emails cancelled and the address forgotten");
    let after = app.graphql(&admin, emails_query, json!({ "id": id })).await;
    let consents = app
        .graphql(
            &admin,
            "query($id: ID!) { member(id: $id) { consents { recipient signedBy } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(consents["member"]["consents"][0]["recipient"], "(erased)");
    assert_eq!(consents["member"]["consents"][0]["signedBy"], "(erased)");
    assert_eq!(after["member"]["emails"][0]["status"], "cancelled");
    assert_eq!(
        after["member"]["emails"][0]["cancelReason"],
        "member_erased"
    );

    let verified = app
        .graphql(
            &admin,
            "{ verifyIntegrity { ok brokenStreams } }",
            json!({}),
        )
        .await;
    assert_eq!(verified["verifyIntegrity"]["ok"], true, "{verified}");

    // Erasing again is harmless: no second event, still erased.
    let again = app
        .graphql(
            &admin,
            "mutation($id: ID!) { eraseMember(memberId: $id, reason: \"member request\") }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(again["eraseMember"], true);
    let erasures: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE type = 'MemberErased'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(erasures, 1);

    // A rebuild from the log shows the placeholder: the name cannot come back.
    projections::rebuild(
        &app.pool,
        &app.keyring,
        ProjectionName::ALL,
        &RebuildOptions::default(),
        |_| {},
    )
    .await
    .unwrap();
    let name: String = sqlx::query_scalar("SELECT name FROM member_summaries WHERE member_id = $1")
        .bind(Uuid::parse_str(&id).unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(name, "(erased)");
    // Nor does another process with the right master key and an empty cache.
    let fresh = clinic_infra::keyring::Keyring::new(app.pool.clone(), app.master_key.clone());
    assert!(fresh
        .reading_keys(&app.pool, [Uuid::parse_str(&id).unwrap()])
        .await
        .unwrap()
        .get(Uuid::parse_str(&id).unwrap())
        .is_none());

    // Nothing more is recorded for an erased member.
    let (code, _) = app
        .graphql_error(
            Some(&admin),
            "mutation($id: ID!) { giveConsent(memberId: $id, scope: EMAIL_OUTREACH) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code, "CONFLICT");
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn treatment_records_are_kept_for_the_retention_period(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.token("admin-ada", Role::Admin, "north");
    let erase = "mutation($id: ID!) { eraseMember(memberId: $id, reason: \"member request\") }";

    let treated = discharged(&app, &admin).await;
    let (code, message) = app
        .graphql_error(Some(&admin), erase, json!({ "id": treated }))
        .await;
    assert_eq!(code, "CONFLICT");
    assert!(
        message.contains("2190 days") && message.contains("can be erased from"),
        "{message}"
    );

    let in_treatment = refer(&app, &admin, "Second Person", "second@example.org").await;
    run(
        &app,
        &admin,
        "completeIntake(memberId: $id, recommendedLevel: OUTPATIENT) { id }",
        &in_treatment,
    )
    .await;
    run(
        &app,
        &admin,
        "admitMember(memberId: $id, levelOfCare: OUTPATIENT) { id }",
        &in_treatment,
    )
    .await;
    let (code, message) = app
        .graphql_error(Some(&admin), erase, json!({ "id": in_treatment }))
        .await;
    assert_eq!(code, "CONFLICT");
    assert!(message.contains("in treatment"), "{message}");

    // A referral that never became treatment goes at once; only admins erase.
    let referral = refer(&app, &admin, "Third Person", "third@example.org").await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let (code, _) = app
        .graphql_error(Some(&clinician), erase, json!({ "id": referral }))
        .await;
    assert_eq!(code, "FORBIDDEN");
    let done = app.graphql(&admin, erase, json!({ "id": referral })).await;
    assert_eq!(done["eraseMember"], true);
    // Another clinic's admin cannot even find the member.
    let south = app.token("admin-south", Role::Admin, "south");
    let (code, _) = app
        .graphql_error(Some(&south), erase, json!({ "id": treated }))
        .await;
    assert_eq!(code, "NOT_FOUND");
    // The refused erasures left the keys alone.
    let keys: i64 =
        sqlx::query_scalar("SELECT count(*) FROM member_keys WHERE wrapped_key IS NOT NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(keys, 2);
}

const CONSENT: &str = "mutation($id: ID!, $r: String!, $signed: DateTime!, $expires: DateTime) {
    recordConsent(memberId: $id, scope: FAMILY_CONTACT, kind: STANDARD, recipient: $r,
        purpose: \"continuity of care\", information: \"attendance and discharge summary\",
        expiresAt: $expires, signedBy: \"the member\", signedAt: $signed, formVersion: \"2.31-v3\") {
      id recipient kind inForce expiresAt signedBy formVersion revokedAt } }";

const DISCLOSE: &str = "mutation($id: ID!, $c: ID!, $r: String!) {
    recordDisclosure(memberId: $id, consentId: $c, recipient: $r, purpose: \"step-down care\",
        description: \"discharge summary\", channel: \"secure fax\") {
      id recipient notice disclosedBy disclosedAt consent { id inForce } member { id } } }";

fn days_ago(days: i64) -> String {
    (time::OffsetDateTime::now_utc() - time::Duration::days(days))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn disclosures_need_a_consent_in_force_naming_the_recipient_and_are_accounted(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let id = refer(&app, &clinician, NAME, EMAIL).await;

    let consent = app
        .graphql(&clinician, CONSENT, json!({ "id": id, "r": "Harbor Step-Down Clinic", "signed": days_ago(2), "expires": days_ago(-30) }))
        .await["recordConsent"]
        .clone();
    assert_eq!(consent["inForce"], true);
    assert_eq!(consent["kind"], "STANDARD");
    let expired = app
        .graphql(&clinician, CONSENT, json!({ "id": id, "r": "Family of the member", "signed": days_ago(20), "expires": days_ago(1) }))
        .await["recordConsent"]
        .clone();
    assert_eq!(expired["inForce"], false);

    let listed = app
        .graphql(
            &clinician,
            "query($id: ID!) { member(id: $id) { consents { id recipient inForce } } }",
            json!({ "id": id }),
        )
        .await;
    let consents = listed["member"]["consents"].as_array().unwrap();
    assert_eq!(consents.len(), 2);
    assert_eq!(consents[0]["recipient"], "Harbor Step-Down Clinic");

    let first = app
        .graphql(
            &clinician,
            DISCLOSE,
            json!({ "id": id, "c": consent["id"], "r": "harbor step-down clinic" }),
        )
        .await["recordDisclosure"]
        .clone();
    assert!(
        first["notice"].as_str().unwrap().contains("42 CFR part 2"),
        "{first}"
    );
    assert_eq!(first["disclosedBy"], "dr-lee");
    assert_eq!(first["member"]["id"], id.as_str());
    let second = app
        .graphql(
            &clinician,
            DISCLOSE,
            json!({ "id": id, "c": consent["id"], "r": "Harbor Step-Down Clinic" }),
        )
        .await["recordDisclosure"]
        .clone();

    for (consent_id, recipient) in [
        (consent["id"].clone(), "Someone Else"),
        (expired["id"].clone(), "Family of the member"),
    ] {
        let (code, _) = app
            .graphql_error(
                Some(&clinician),
                DISCLOSE,
                json!({ "id": id, "c": consent_id, "r": recipient }),
            )
            .await;
        assert_eq!(code, "CONFLICT", "{recipient}");
    }
    let intake = app.token("front-desk", Role::Intake, "north");
    let (code, _) = app
        .graphql_error(
            Some(&intake),
            DISCLOSE,
            json!({ "id": id, "c": consent["id"], "r": "Harbor Step-Down Clinic" }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");

    let auditor = app.token("auditor-ann", Role::Auditor, "north");
    let accounting = app
        .graphql(&auditor, "query($id: ID!) { disclosures(memberId: $id) { id recipient channel consent { id } } }", json!({ "id": id }))
        .await;
    let ids: Vec<&Value> = accounting["disclosures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["id"])
        .collect();
    assert_eq!(ids, [&second["id"], &first["id"]], "newest first");
    let (code, message) = app
        .graphql_error(
            Some(&auditor),
            "query($id: ID!) { disclosures(memberId: $id, sinceDays: 0) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("sinceDays"), "{message}");

    // The same accounting as CSV (what `clinic disclosures --member` prints), logged as an export.
    let mut csv = Vec::new();
    let rows = clinic_graphql::operator::disclosures_csv(
        &app.pool,
        &app.keyring,
        MemberId::new(Uuid::parse_str(&id).unwrap()),
        2190,
        &mut csv,
    )
    .await
    .unwrap();
    assert_eq!(rows, 2);
    let csv = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("disclosed_at,recipient,purpose"),
        "{csv}"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[1].contains("Harbor Step-Down Clinic") && lines[1].contains("secure fax"),
        "{csv}"
    );

    let log = app
        .graphql(&auditor, "query($id: ID!) { accessLog(memberId: $id, first: 100) { edges { node { action category role allowed } } } }", json!({ "id": id }))
        .await;
    let entries = log["accessLog"]["edges"].as_array().unwrap();
    assert!(entries
        .iter()
        .any(|e| e["node"]["category"] == "DISCLOSURES"
            && e["node"]["action"] == "read"
            && e["node"]["role"] == "AUDITOR"));
    assert!(entries
        .iter()
        .any(|e| e["node"]["category"] == "DISCLOSURES" && e["node"]["action"] == "export"));
    assert!(entries.iter().any(|e| e["node"]["category"] == "CONSENTS"));
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_facilitator_reads_outside_their_rosters_only_by_breaking_the_glass(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let id = refer(&app, &clinician, NAME, EMAIL).await;
    let facilitator = app.token("facilitator-sam", Role::Facilitator, "north");

    let (code, _) = app
        .graphql_error(
            Some(&facilitator),
            "query($id: ID!) { member(id: $id) { name } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    let (code, message) = app
        .graphql_error(
            Some(&facilitator),
            "query($id: ID!) { memberBreakGlass(id: $id, reason: \"  \") { name } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "a reason is required");
    assert!(message.contains("reason"), "{message}");
    let read = app
        .graphql(&facilitator, "query($id: ID!) { memberBreakGlass(id: $id, reason: \"member in crisis at the front desk\") { name } }", json!({ "id": id }))
        .await;
    assert_eq!(read["memberBreakGlass"]["name"], NAME);
    // Consents stay outside a facilitator's scope even then.
    let (code, _) = app
        .graphql_error(
            Some(&facilitator),
            "query($id: ID!) { memberBreakGlass(id: $id, reason: \"crisis\") { consents { id } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");

    let auditor = app.token("auditor-ann", Role::Auditor, "north");
    let reads = app
        .graphql(&auditor, "{ breakGlassReads(first: 10) { edges { node { actor role allowed breakGlassReason memberId category } } } }", json!({}))
        .await;
    let edges = reads["breakGlassReads"]["edges"].as_array().unwrap();
    assert!(!edges.is_empty());
    let node = &edges[edges.len() - 1]["node"];
    assert_eq!(node["actor"], "facilitator-sam");
    assert_eq!(node["role"], "FACILITATOR");
    assert_eq!(node["allowed"], true);
    assert_eq!(node["memberId"], id.as_str());
    assert_eq!(node["category"], "PROFILE");
    assert!(edges
        .iter()
        .any(|e| e["node"]["breakGlassReason"] == "member in crisis at the front desk"));
    // The refused plain read is in the access log, as refused.
    let log = app
        .graphql(&auditor, "query($id: ID!) { accessLog(memberId: $id, first: 100) { edges { node { actor allowed breakGlassReason } } } }", json!({ "id": id }))
        .await;
    assert!(log["accessLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["node"]["actor"] == "facilitator-sam"
            && e["node"]["allowed"] == false
            && e["node"]["breakGlassReason"].is_null()));
    // The access log is append-only in the database.
    for statement in [
        "UPDATE access_log SET allowed = true",
        "DELETE FROM access_log",
    ] {
        let refused = sqlx::query(statement)
            .execute(&app.pool)
            .await
            .expect_err(statement);
        assert!(refused.to_string().contains("append-only"), "{refused}");
    }
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_retried_consent_or_disclosure_is_recorded_once(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let id = refer(&app, &clinician, NAME, EMAIL).await;
    let send = |query: &'static str, variables: Value, key: &'static str| {
        let answer = app.graphql_keyed(&clinician, key, query, variables);
        async move {
            let response = answer.await;
            assert!(response.get("errors").is_none(), "{response}");
            response["data"].clone()
        }
    };
    let variables = json!({ "id": id, "r": "Harbor Step-Down Clinic", "signed": days_ago(1), "expires": days_ago(-90) });
    let first = send(CONSENT, variables.clone(), "consent-retry-1").await;
    let retry = send(CONSENT, variables, "consent-retry-1").await;
    assert_eq!(first["recordConsent"]["id"], retry["recordConsent"]["id"]);
    let consent = first["recordConsent"]["id"].clone();

    let variables = json!({ "id": id, "c": consent, "r": "Harbor Step-Down Clinic" });
    let first = send(DISCLOSE, variables.clone(), "disclosure-retry-1").await;
    let retry = send(DISCLOSE, variables, "disclosure-retry-1").await;
    assert_eq!(
        first["recordDisclosure"]["id"],
        retry["recordDisclosure"]["id"]
    );

    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT type, count(*) FROM events WHERE type IN ('ConsentGiven', 'DisclosureMade') GROUP BY type ORDER BY type",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        counts,
        [
            ("ConsentGiven".to_owned(), 1),
            ("DisclosureMade".to_owned(), 1)
        ]
    );
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn an_erasure_interrupted_before_its_key_was_destroyed_is_completed_by_the_projection(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    let admin = app.token("admin-ada", Role::Admin, "north");
    let id = refer(&app, &admin, NAME, EMAIL).await;
    let member = MemberId::new(Uuid::parse_str(&id).unwrap());
    // The event is appended, then the process dies before destroying the key.
    let handler = clinic_infra::commands::CommandHandler::<clinic_domain::MemberDecider>::new(
        clinic_infra::event_store::EventStore::new(app.pool.clone()),
        app.keyring.clone(),
    );
    handler
        .execute(
            &clinic_infra::commands::CommandContext {
                clinic: clinic_infra::clinic::ClinicId::parse("north").unwrap(),
                actor: "admin-ada".into(),
                correlation_id: Uuid::new_v4(),
                idempotency_key: None,
                request_digest: None,
            },
            &clinic_infra::event_store::StreamId::of("member", member.as_uuid()),
            None,
            clinic_domain::member::EraseMember {
                reason: clinic_domain::values::Text::parse("reason", "member request").unwrap(),
                at: time::OffsetDateTime::now_utc(),
                retention_days: 2190,
            }
            .into(),
        )
        .await
        .unwrap();
    project_everything(&app).await;
    let live: bool =
        sqlx::query_scalar("SELECT wrapped_key IS NOT NULL FROM member_keys WHERE member_id = $1")
            .bind(member.as_uuid())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        !live,
        "the members projection destroyed the key of the erased member"
    );
    let fresh = clinic_infra::keyring::Keyring::new(app.pool.clone(), app.master_key.clone());
    let keys = fresh
        .reading_keys(&app.pool, [member.as_uuid()])
        .await
        .unwrap();
    assert!(keys.get(member.as_uuid()).is_none());
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn break_glass_reasons_are_sealed_and_refused_reads_are_logged(pool: PgPool) {
    let app = spawn_app_with_retention(pool, 0).await;
    let admin = app.token("admin-ada", Role::Admin, "north");
    let id = refer(&app, &admin, NAME, EMAIL).await;
    let facilitator = app.token("facilitator-sam", Role::Facilitator, "north");
    let reason = "Zephyrine's mother called the front desk";
    app.graphql(
        &facilitator,
        "query($id: ID!, $r: String!) { memberBreakGlass(id: $id, reason: $r) { id } }",
        json!({ "id": id, "r": reason }),
    )
    .await;
    let stored: String = sqlx::query_scalar(
        "SELECT break_glass_reason FROM access_log WHERE break_glass_reason IS NOT NULL",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        stored.starts_with("enc:v1:") && !stored.contains("mother"),
        "{stored}"
    );
    let reads = "{ breakGlassReads(first: 10) { edges { node { breakGlassReason } } } }";
    let shown = app.graphql(&admin, reads, json!({})).await;
    assert_eq!(
        shown["breakGlassReads"]["edges"][0]["node"]["breakGlassReason"],
        reason
    );

    // A role refused by the guard leaves a refused entry for that member and category.
    let intake = app.token("front-desk", Role::Intake, "north");
    let (code, _) = app
        .graphql_error(
            Some(&intake),
            "query($id: ID!) { disclosures(memberId: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    let (code, _) = app
        .graphql_error(
            Some(&intake),
            "query($id: ID!) { member(id: $id) { history(first: 1) { edges { cursor } } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    let log = app
        .graphql(&admin, "query($id: ID!) { accessLog(memberId: $id, first: 100) { edges { node { actor category allowed } } } }", json!({ "id": id }))
        .await;
    let refused: Vec<&Value> = log["accessLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .filter(|n| n["actor"] == "front-desk" && n["allowed"] == false)
        .collect();
    let categories: Vec<&Value> = refused.iter().map(|n| &n["category"]).collect();
    assert!(categories.contains(&&json!("DISCLOSURES")), "{log}");
    assert!(categories.contains(&&json!("HISTORY")), "{log}");

    // Erasing the member makes the reason unreadable too.
    app.graphql(
        &admin,
        "mutation($id: ID!) { eraseMember(memberId: $id, reason: \"member request\") }",
        json!({ "id": id }),
    )
    .await;
    let shown = app.graphql(&admin, reads, json!({})).await;
    assert_eq!(
        shown["breakGlassReads"]["edges"][0]["node"]["breakGlassReason"],
        "(erased)"
    );
}

/// One consent revoked as the member revoked it (how, when received): the others of its
/// scope stay in force, and disclosures under it stop from when it was received.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn one_consent_is_revoked_as_received_and_the_others_stay_in_force(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let id = refer(&app, &clinician, NAME, EMAIL).await;
    let consent = |recipient: &'static str| {
        let app = &app;
        let clinician = clinician.clone();
        let id = id.clone();
        async move {
            app.graphql(&clinician, CONSENT, json!({ "id": id, "r": recipient, "signed": days_ago(10), "expires": days_ago(-30) }))
                .await["recordConsent"]
                .clone()
        }
    };
    let step_down = consent("Harbor Step-Down Clinic").await;
    let family = consent("Family of the member").await;

    let revoke = "mutation($id: ID!, $c: ID!, $at: DateTime) { recordRevocation(memberId: $id, consentId: $c, howReceived: \"in writing\", receivedAt: $at) { id inForce revokedAt } }";
    let (code, message) = app
        .graphql_error(
            Some(&clinician),
            revoke,
            json!({ "id": id, "c": step_down["id"], "at": days_ago(-1) }),
        )
        .await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("BAD_USER_INPUT", "`receivedAt` must not be in the future")
    );
    let revoked = app
        .graphql(
            &clinician,
            revoke,
            json!({ "id": id, "c": step_down["id"], "at": days_ago(1) }),
        )
        .await["recordRevocation"]
        .clone();
    assert_eq!(revoked["inForce"], false);
    assert!(revoked["revokedAt"].as_str().is_some(), "{revoked}");
    let (code, _) = app
        .graphql_error(
            Some(&clinician),
            revoke,
            json!({ "id": id, "c": step_down["id"] }),
        )
        .await;
    assert_eq!(code, "CONFLICT", "revoked once");

    let listed = app
        .graphql(
            &clinician,
            "query($id: ID!) { member(id: $id) { consents { recipient inForce } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        listed["member"]["consents"],
        json!([
            { "recipient": "Harbor Step-Down Clinic", "inForce": false },
            { "recipient": "Family of the member", "inForce": true },
        ])
    );
    let (code, _) = app
        .graphql_error(
            Some(&clinician),
            DISCLOSE,
            json!({ "id": id, "c": step_down["id"], "r": "Harbor Step-Down Clinic" }),
        )
        .await;
    assert_eq!(code, "CONFLICT", "no disclosure under a revoked consent");
    app.graphql(
        &clinician,
        DISCLOSE,
        json!({ "id": id, "c": family["id"], "r": "Family of the member" }),
    )
    .await;
    app.stop().await.unwrap();
}

/// A process that had a member's key in its cache honours another process's erasure at once:
/// the member's history, and their past state, show nothing of the person.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_member_erased_by_another_process_reads_as_erased_at_once(pool: PgPool) {
    let one = spawn_app_with_retention(pool.clone(), 0).await;
    let two = spawn_api_only(pool, one.master_key.clone()).await;
    let admin = one.token("admin-ada", Role::Admin, "north");
    let id = discharged(&one, &admin).await;
    // A consent whose expiry event names something personal (sealed like the other texts).
    one.graphql(
        &admin,
        "mutation($id: ID!, $signed: DateTime!) { recordConsent(memberId: $id, scope: FAMILY_CONTACT, kind: STANDARD, recipient: \"Robin's sponsor\", purpose: \"support\", information: \"attendance\", expiresOn: \"Robin's court date\", signedBy: \"the member\", signedAt: $signed, formVersion: \"2.31-v3\") { id } }",
        json!({ "id": id, "signed": days_ago(0) }),
    )
    .await;
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let read = "query($id: ID!, $at: DateTime!) { member(id: $id) { history(first: 1) { edges { node { data } } } consents { recipient expiresOn } } memberAsOf(id: $id, at: $at) { name } }";
    let before = two
        .graphql(&admin, read, json!({ "id": id, "at": now }))
        .await;
    assert_eq!(
        before["member"]["history"]["edges"][0]["node"]["data"]["name"],
        NAME
    );
    assert_eq!(before["memberAsOf"]["name"], NAME);
    let consents = |read: &Value| read["member"]["consents"].as_array().unwrap().clone();
    assert!(
        consents(&before).contains(
            &json!({ "recipient": "Robin's sponsor", "expiresOn": "Robin's court date" })
        ),
        "{before}"
    );

    one.graphql(
        &admin,
        "mutation($id: ID!) { eraseMember(memberId: $id, reason: \"member request\") }",
        json!({ "id": id }),
    )
    .await;
    let after = two
        .graphql(&admin, read, json!({ "id": id, "at": now }))
        .await;
    assert_eq!(
        after["member"]["history"]["edges"][0]["node"]["data"]["name"],
        "(erased)"
    );
    assert_eq!(
        after["memberAsOf"]["name"], "(erased)",
        "the member as they were before the erasure, without their name"
    );
    assert_eq!(
        consents(&after).len(),
        consents(&before).len(),
        "still listed: {after}"
    );
    for consent in consents(&after) {
        assert_eq!(consent["recipient"], "(erased)", "{after}");
        assert!(
            consent["expiresOn"].is_null(),
            "the erasure forgets it: {after}"
        );
    }
    two.stop().await.unwrap();
    one.stop().await.unwrap();
}

/// A consent "until the end of treatment" ends when the member is discharged: disclosures
/// under it are recorded while they are in treatment and refused after.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_consent_until_the_end_of_treatment_ends_at_the_discharge(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let id = refer(&app, &clinician, NAME, EMAIL).await;
    for step in [
        "completeIntake(memberId: $id, recommendedLevel: OUTPATIENT) { id }",
        "admitMember(memberId: $id, levelOfCare: OUTPATIENT) { id }",
    ] {
        run(&app, &clinician, step, &id).await;
    }
    let consent = app
        .graphql(
            &clinician,
            "mutation($id: ID!, $signed: DateTime!) { recordConsent(memberId: $id, scope: FAMILY_CONTACT, kind: STANDARD, recipient: \"Harbor Step-Down Clinic\", purpose: \"continuity of care\", information: \"discharge summary\", expiresOn: \"end of treatment\", signedBy: \"the member\", signedAt: $signed, formVersion: \"2.31-v3\") { id inForce endedAt } }",
            json!({ "id": id, "signed": days_ago(1) }),
        )
        .await["recordConsent"]
        .clone();
    assert_eq!(consent["inForce"], true);
    assert!(consent["endedAt"].is_null());
    let disclose = json!({ "id": id, "c": consent["id"], "r": "Harbor Step-Down Clinic" });
    app.graphql(&clinician, DISCLOSE, disclose.clone()).await;

    let before_discharge = days_ago(0);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    run(
        &app,
        &clinician,
        "dischargeMember(memberId: $id, reason: TRANSFERRED) { id }",
        &id,
    )
    .await;
    // Time travel shows the consent as it stood then: in force, not ended.
    let admin = app.token("admin-ada", Role::Admin, "north");
    let then = app
        .graphql(
            &admin,
            "query($id: ID!, $at: DateTime!) { memberAsOf(id: $id, at: $at) { consents { inForce endedAt } } }",
            json!({ "id": id, "at": before_discharge }),
        )
        .await;
    assert_eq!(
        then["memberAsOf"]["consents"],
        json!([{ "inForce": true, "endedAt": null }]),
        "{then}"
    );
    let listed = app
        .graphql(
            &clinician,
            "query($id: ID!) { member(id: $id) { consents { inForce endedAt } } }",
            json!({ "id": id }),
        )
        .await;
    let ended = &listed["member"]["consents"][0];
    assert_eq!(ended["inForce"], false, "{listed}");
    assert!(ended["endedAt"].as_str().is_some(), "{listed}");
    let (code, _) = app
        .graphql_error(Some(&clinician), DISCLOSE, disclose)
        .await;
    assert_eq!(code, "CONFLICT", "the consent ended with the treatment");
    app.stop().await.unwrap();
}

/// A member record read is logged under each category of data it shows: the run of missed
/// check-ins as check-ins, the attendance figures and the member's groups as attendance, the
/// profile alone as profile; in a list, in a record and in a mutation's answer alike.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_read_is_logged_under_each_category_it_shows(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let auditor = app.token("auditor", Role::Auditor, "north");
    let id = refer(&app, &clinician, NAME, EMAIL).await;
    let logged = || reads_logged(&app, &auditor, "dr-lee", &id);
    app.graphql(
        &clinician,
        "query Counts($id: ID!) { member(id: $id) { name consecutiveMissedCheckIns atRisk } }",
        json!({ "id": id }),
    )
    .await;
    app.graphql(
        &clinician,
        "query Names { members(first: 10) { edges { node { name groups { name } } } } }",
        json!({}),
    )
    .await;
    app.graphql(
        &clinician,
        "mutation Intake($id: ID!) { completeIntake(memberId: $id, recommendedLevel: OUTPATIENT) { consecutiveMissedCheckIns } }",
        json!({ "id": id }),
    )
    .await;
    let entries = logged().await;
    for expected in [
        ("Counts", "ATTENDANCE"),
        ("Counts", "CHECK_INS"),
        ("Names", "ATTENDANCE"),
        ("Intake", "CHECK_INS"),
    ] {
        assert!(
            entries
                .iter()
                .any(|(op, c)| op == expected.0 && c == expected.1),
            "{expected:?} in {entries:?}"
        );
    }
    assert!(
        !entries
            .iter()
            .any(|(op, c)| matches!(op.as_str(), "Counts" | "Intake") && c == "PROFILE"),
        "the clinical categories cover the profile: {entries:?}"
    );
}

/// A list about one part of the record (follow-ups' outcomes) that shows more of its members
/// (their check-ins, their groups) is logged under each part it shows; a facilitator's read of
/// a member's groups (theirs) is an attendance read.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_list_is_logged_under_each_category_it_shows_of_its_members(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.token("admin-ada", Role::Admin, "north");
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let auditor = app.token("auditor", Role::Auditor, "north");

    let alumnus = discharged(&app, &admin).await;
    let due = app
        .graphql(
            &clinician,
            "query Due { dueFollowUps(withinDays: 3660, first: 10) { edges { node { member { id consecutiveMissedCheckIns } } } } }",
            json!({}),
        )
        .await;
    assert!(
        due["dueFollowUps"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["node"]["member"]["id"] == json!(alumnus)),
        "{due}"
    );
    for query in [
        "query DueList { followUpsDue(withinDays: 3660) { member { groups { name } } } }",
        "query Plain { followUpsDue(withinDays: 3660) { member { name } } }",
    ] {
        app.graphql(&clinician, query, json!({})).await;
    }
    let pair = |op: &str, category: &str| (op.to_owned(), category.to_owned());
    assert_eq!(
        // One entry per read: a list names a member once, however many of their follow-ups
        // it shows.
        reads_logged(&app, &auditor, "dr-lee", &alumnus).await,
        [
            pair("Due", "CHECK_INS"),
            pair("Due", "OUTCOMES"),
            pair("DueList", "ATTENDANCE"),
            pair("DueList", "OUTCOMES"),
            pair("Plain", "OUTCOMES"),
        ]
    );

    let member = refer(&app, &admin, "Odalys Brennick", "odalys@example.org").await;
    in_a_skills_group(&app, &admin, &member, Some("fac-fay")).await;
    let fay = app.token("fac-fay", Role::Facilitator, "north");
    let read = app
        .graphql(
            &fay,
            "query Mine($id: ID!) { member(id: $id) { name groups { name } } }",
            json!({ "id": member }),
        )
        .await;
    assert_eq!(read["member"]["groups"][0]["name"], "Skills");
    assert_eq!(
        reads_logged(&app, &auditor, "fac-fay", &member).await,
        [pair("Mine", "ATTENDANCE")]
    );
}

/// Intake reads no rosters or sessions; a refused one is logged as a denied attendance read of
/// each member on the roster, as a refused member field is.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_refused_roster_read_is_logged_for_each_member_on_it(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let intake = app.token("front-desk", Role::Intake, "north");
    let auditor = app.token("auditor", Role::Auditor, "north");
    let id = refer(&app, &clinician, NAME, EMAIL).await;
    let group = in_a_skills_group(&app, &clinician, &id, None).await;
    for field in ["members { name }", "sessions { topic }"] {
        let (code, _) = app
            .graphql_error(
                Some(&intake),
                &format!("query($g: ID!) {{ group(id: $g) {{ name {field} }} }}"),
                json!({ "g": group }),
            )
            .await;
        assert_eq!(code, "FORBIDDEN", "{field}");
    }
    let log = app
        .graphql(&auditor, "query($id: ID!) { accessLog(memberId: $id, first: 100) { edges { node { actor category allowed } } } }", json!({ "id": id }))
        .await;
    let denied = log["accessLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["node"]["actor"] == "front-desk"
                && e["node"]["category"] == "ATTENDANCE"
                && e["node"]["allowed"] == false
        })
        .count();
    assert_eq!(denied, 2, "{log}");
}

/// A key once used for a request about a member since erased cannot be compared with a new
/// request (its digest was sealed under the member's key): it is refused, not taken for a
/// retry, which would answer with the erased member and refer nobody.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_key_used_for_an_erased_members_request_is_no_retry(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.token("admin-ada", Role::Admin, "north");
    let refer = "mutation($name: String!) { referMember(name: $name, source: SELF) { id name } }";
    let first = app
        .graphql_keyed(&admin, "refer-1", refer, json!({ "name": NAME }))
        .await;
    let id = first["data"]["referMember"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Referred only: no treatment record to keep, so erasable at once.
    run(
        &app,
        &admin,
        "eraseMember(memberId: $id, reason: \"member request\")",
        &id,
    )
    .await;

    let stored = app.events_stored().await;
    let other = app
        .graphql_keyed(&admin, "refer-1", refer, json!({ "name": "Bram Other" }))
        .await;
    assert_eq!(
        other["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{other}"
    );
    assert_eq!(app.events_stored().await, stored, "nothing stored");
    let referred = app
        .graphql_keyed(&admin, "refer-2", refer, json!({ "name": "Bram Other" }))
        .await;
    assert_eq!(
        referred["data"]["referMember"]["name"], "Bram Other",
        "{referred}"
    );
}

/// An erasure's reason stays readable in the log once the member's key is destroyed: one that
/// names the member is refused, and nothing is erased.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn an_erasure_whose_reason_names_the_member_is_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.token("admin-ada", Role::Admin, "north");
    let id = refer(&app, &admin, NAME, EMAIL).await;
    const ERASE: &str =
        "mutation($id: ID!, $r: String!) { eraseMember(memberId: $id, reason: $r) }";
    for reason in [
        "quillfeather asked to be forgotten",
        EMAIL,
        "called from 555-013-7788",
    ] {
        let (code, message) = app
            .graphql_error(Some(&admin), ERASE, json!({ "id": id, "r": reason }))
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{reason}: {message}");
        assert!(message.contains("must not name the member"), "{message}");
        assert!(
            !message.to_lowercase().contains("quillfeather"),
            "{message}"
        );
    }
    let member = app
        .graphql(
            &admin,
            "query($id: ID!) { member(id: $id) { name erased } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(member["member"]["name"], NAME);
    assert_eq!(member["member"]["erased"], false);

    let erased = app
        .graphql(&admin, ERASE, json!({ "id": id, "r": "member request" }))
        .await;
    assert_eq!(erased["eraseMember"], true);
}

const CHANGE: &str = "mutation($id: ID!, $n: String, $e: String, $p: String,
    $noEmail: Boolean, $noPhone: Boolean) {
    changeMemberDetails(memberId: $id, name: $n, email: $e, phone: $p,
        removeEmail: $noEmail, removePhone: $noPhone) { name version } }";

/// A new name or address is sealed like the referral's, shown at once, and sends the emails not
/// yet sent to the new address; an address removed cancels them; bad input and the wrong role
/// change nothing; a former name may not be an erasure's reason either, and after the erasure
/// no name or address the member ever had is readable.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_change_of_details_is_sealed_shown_and_readdresses_the_pending_emails(pool: PgPool) {
    const NEW_NAME: &str = "Zephyrine Marlowe-Ingram";
    const NEW_EMAIL: &str = "z.marlowe-ingram@example.org";
    let app = spawn_app_with_retention(pool, 0).await;
    let admin = app.token("admin-ada", Role::Admin, "north");
    let intake = app.token("front-desk", Role::Intake, "north");
    let id = discharged(&app, &admin).await;
    project_everything(&app).await;
    let before_change = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let recipients = || async {
        sqlx::query_as::<_, (String, Option<String>, Option<String>)>(
            "SELECT status, cancel_reason, recipient FROM outbox ORDER BY created_at",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap()
    };
    assert_eq!(
        recipients().await,
        [("pending".to_owned(), None, Some(EMAIL.to_owned()))]
    );

    // Refused, and nothing recorded: an invalid address, an address both given and removed,
    // and a role that may not.
    let stored = app.events_stored().await;
    for (variables, code) in [
        (json!({ "id": id, "e": "not an address" }), "BAD_USER_INPUT"),
        (
            json!({ "id": id, "e": NEW_EMAIL, "noEmail": true }),
            "BAD_USER_INPUT",
        ),
    ] {
        let (got, message) = app.graphql_error(Some(&intake), CHANGE, variables).await;
        assert_eq!(got, code, "{message}");
    }
    let facilitator = app.token("fay", Role::Facilitator, "north");
    let (code, _) = app
        .graphql_error(
            Some(&facilitator),
            CHANGE,
            json!({ "id": id, "n": NEW_NAME }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    assert_eq!(app.events_stored().await, stored);

    // The variables left out ($p, $noEmail, ...) keep what they would change.
    let changed = app
        .graphql(
            &intake,
            CHANGE,
            json!({ "id": id, "n": NEW_NAME, "e": NEW_EMAIL }),
        )
        .await;
    assert_eq!(changed["changeMemberDetails"]["name"], NEW_NAME);
    let version = changed["changeMemberDetails"]["version"].clone();
    // The same change again records nothing.
    let again = app
        .graphql(
            &intake,
            CHANGE,
            json!({ "id": id, "n": NEW_NAME, "e": NEW_EMAIL }),
        )
        .await;
    assert_eq!(again["changeMemberDetails"]["version"], version);

    let stored: String =
        sqlx::query_scalar("SELECT data::text FROM events WHERE type = 'MemberDetailsChanged'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        !stored.contains("Marlowe") && !stored.contains("marlowe"),
        "{stored}"
    );
    assert!(stored.contains("\"email\": \"enc:v1:"), "{stored}");
    assert!(
        stored.contains("\"phone\": \"enc:v1:"),
        "the phone is kept, sealed: {stored}"
    );
    let read = app
        .graphql(
            &admin,
            "query($id: ID!, $at: DateTime!) {
                members(first: 10) { edges { node { id name } } }
                now: member(id: $id) { contact { email phone } }
                then: memberAsOf(id: $id, at: $at) { name contact { email phone } } }",
            json!({ "id": id, "at": before_change }),
        )
        .await;
    assert_eq!(read["members"]["edges"][0]["node"]["name"], NEW_NAME);
    assert_eq!(
        read["now"]["contact"],
        json!({ "email": NEW_EMAIL, "phone": PHONE })
    );
    assert_eq!(
        read["then"]["name"], NAME,
        "time travel shows the name of then"
    );
    assert_eq!(
        read["then"]["contact"],
        json!({ "email": EMAIL, "phone": PHONE })
    );
    // Contact details are for those who refer and change them: an auditor reads the history.
    let auditor = app.token("aud", Role::Auditor, "north");
    let (code, _) = app
        .graphql_error(
            Some(&auditor),
            "query($id: ID!) { member(id: $id) { contact { email } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    let refused: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM access_log WHERE actor = 'aud' AND category = 'profile' AND NOT allowed",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(refused, 1, "the refused read is logged");
    project_everything(&app).await;
    assert_eq!(
        recipients().await,
        [("pending".to_owned(), None, Some(NEW_EMAIL.to_owned()))]
    );

    // One idempotency key names one request: removing the email, then the phone with the same
    // key, is refused rather than taken for a retry.
    let removed = app
        .graphql_keyed(
            &intake,
            "remove-1",
            CHANGE,
            json!({ "id": id, "noEmail": true }),
        )
        .await;
    assert!(removed.get("errors").is_none(), "{removed}");
    let reused = app
        .graphql_keyed(
            &intake,
            "remove-1",
            CHANGE,
            json!({ "id": id, "noPhone": true }),
        )
        .await;
    assert_eq!(
        reused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{reused}"
    );
    // The address removed: the email is cancelled, says why, and keeps no address.
    project_everything(&app).await;
    assert_eq!(
        recipients().await,
        [("cancelled".to_owned(), Some("no_address".to_owned()), None)]
    );
    let emails = app
        .graphql(
            &admin,
            "query($id: ID!) { member(id: $id) { emails { status cancelReason } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        emails["member"]["emails"],
        json!([{ "status": "cancelled", "cancelReason": "no_address" }])
    );

    const ERASE: &str =
        "mutation($id: ID!, $r: String!) { eraseMember(memberId: $id, reason: $r) }";
    let (code, _) = app
        .graphql_error(
            Some(&admin),
            ERASE,
            json!({ "id": id, "r": "Quillfeather family request" }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "the former name still names them");
    app.graphql(&admin, ERASE, json!({ "id": id, "r": "member request" }))
        .await;
    project_everything(&app).await;
    let dump = pg_dump(&app.pool).await;
    for secret in [NAME, EMAIL, PHONE, NEW_NAME, NEW_EMAIL] {
        assert_eq!(leaks(&dump, secret), Vec::<&str>::new(), "{secret}");
    }
    let (code, _) = app
        .graphql_error(Some(&intake), CHANGE, json!({ "id": id, "n": NEW_NAME }))
        .await;
    assert_eq!(
        code, "CONFLICT",
        "an erased member has no details to change"
    );
    let contact = app
        .graphql(
            &intake,
            "query($id: ID!) { member(id: $id) { contact { email phone } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        contact["member"]["contact"],
        json!({ "email": null, "phone": null })
    );
}
