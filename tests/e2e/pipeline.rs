//! The pipeline from referral to alumni through the API, with each role's rights, tenancy,
//! optimistic concurrency, idempotent retries and the race for a group's last seat.

use clinic_graphql::auth::Role;
use clinic_tests::spawn_app;
use serde_json::{json, Value};
use sqlx::{Connection, PgPool};

const MEMBER_FIELDS: &str = "id name stage levelOfCare version atRisk sessionsAttendedLast7Days
    consecutiveMissedCheckIns erased checkIns { id dueAt status } followUps { id dayOffset dueAt outcome }
    groups { id name }";

/// The outcomes report, every row.
const OUTCOMES: &str = "{ outcomes { rows { dayOffset recorded outcomes { outcome count } } } }";
/// What intake may read of a member: the profile, no attendance, groups, check-ins or outcomes.
const PROFILE_FIELDS: &str = "id name stage levelOfCare version erased";

fn member_mutation(name: &str, args: &str) -> String {
    member_mutation_answering(name, args, MEMBER_FIELDS)
}

fn member_mutation_answering(name: &str, args: &str, fields: &str) -> String {
    format!("mutation($id: ID!, $v: Int) {{ {name}(memberId: $id, {args}, expectedVersion: $v) {{ {fields} }} }}")
}

async fn refer(app: &clinic_tests::TestApp, token: &str, name: &str) -> Value {
    let data = app
        .graphql(
            token,
            &format!("mutation($name: String!) {{ referMember(name: $name, email: \"someone@example.org\", source: SELF) {{ {PROFILE_FIELDS} }} }}"),
            json!({ "name": name }),
        )
        .await;
    data["referMember"].clone()
}

async fn admitted(app: &clinic_tests::TestApp, token: &str, name: &str) -> Value {
    let member = refer(app, token, name).await;
    let id = member["id"].clone();
    app.graphql(
        token,
        &member_mutation("completeIntake", "recommendedLevel: INTENSIVE_OUTPATIENT"),
        json!({ "id": id }),
    )
    .await;
    let data = app
        .graphql(
            token,
            &member_mutation("admitMember", "levelOfCare: INTENSIVE_OUTPATIENT"),
            json!({ "id": id }),
        )
        .await;
    data["admitMember"].clone()
}

async fn form_group(
    app: &clinic_tests::TestApp,
    token: &str,
    capacity: i32,
    facilitator: &str,
) -> Value {
    let data = app
        .graphql(
            token,
            "mutation($c: Int, $f: String) { formGroup(name: \"Skills for the week\", model: SKILLS_DEVELOPMENT, capacity: $c, facilitator: $f) { id name capacity facilitator version attendanceRate members { id } } }",
            json!({ "c": capacity, "f": facilitator }),
        )
        .await;
    data["formGroup"].clone()
}

/// The board's stage counts, in the domain's order.
async fn stage_counts(app: &clinic_tests::TestApp, token: &str) -> Vec<i64> {
    let board = app
        .graphql(token, "{ pipeline { stages { count } } }", json!({}))
        .await;
    board["pipeline"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["count"].as_i64().unwrap())
        .collect()
}

/// Sets the clinic's referred count behind the projection's back (nothing announces it).
async fn set_referred_by_hand(pool: &PgPool, clinic: &str, members: i64) {
    sqlx::query(
        "INSERT INTO pipeline_counts (clinic, stage, members) VALUES ($1, 'referred', $2) \
         ON CONFLICT (clinic, stage, level_of_care) DO UPDATE SET members = $2",
    )
    .bind(clinic)
    .bind(members)
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn the_board_shows_a_write_as_soon_as_its_mutation_answers(pool: PgPool) {
    // The server keeps each clinic's board in memory until the members projection commits.
    // Without the checkpoint's NOTIFY, and with copies that never expire, only the mutation's
    // own read-your-writes wait can drop the copy: the board read right after each answer must
    // show the write all the same.
    let app = clinic_tests::spawn_app_keeping_copies(pool.clone()).await;
    let intake = app.token("front-desk", Role::Intake, "north");
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    assert_eq!(stage_counts(&app, &clinician).await, [0, 0, 0, 0, 0, 0]);
    // The copy is in use: a change nothing announces is not seen.
    set_referred_by_hand(&pool, "north", 7).await;
    assert_eq!(stage_counts(&app, &clinician).await, [0, 0, 0, 0, 0, 0]);
    set_referred_by_hand(&pool, "north", 0).await;
    for referred in 1..=3 {
        refer(&app, &intake, &format!("Member Number{referred}")).await;
        assert_eq!(
            stage_counts(&app, &clinician).await,
            [referred, 0, 0, 0, 0, 0]
        );
    }
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_member_goes_from_referral_to_alumni(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let intake = app.token("front-desk", Role::Intake, "north");

    let member = refer(&app, &intake, "Robin Example").await;
    assert_eq!(member["stage"], "REFERRED");
    assert_eq!(member["name"], "Robin Example");
    assert_eq!(member["version"], 1);
    let id = member["id"].clone();

    let after_intake = app
        .graphql(
            &intake,
            &member_mutation_answering(
                "completeIntake",
                "recommendedLevel: RESIDENTIAL",
                PROFILE_FIELDS,
            ),
            json!({ "id": id, "v": 1 }),
        )
        .await;
    assert_eq!(after_intake["completeIntake"]["stage"], "INTAKE");

    let admitted = app
        .graphql(
            &clinician,
            &member_mutation("admitMember", "levelOfCare: RESIDENTIAL"),
            json!({ "id": id }),
        )
        .await;
    let admitted = &admitted["admitMember"];
    assert_eq!(admitted["stage"], "IN_TREATMENT");
    assert_eq!(admitted["levelOfCare"], "RESIDENTIAL");
    assert_eq!(admitted["atRisk"], true, "no sessions yet this week");

    let group = form_group(&app, &clinician, 12, "facilitator-sam").await;
    let joined = app
        .graphql(
            &clinician,
            "mutation($g: ID!, $m: ID!) { joinGroup(groupId: $g, memberId: $m) { id members { id name } } }",
            json!({ "g": group["id"], "m": id }),
        )
        .await;
    assert_eq!(joined["joinGroup"]["members"][0]["id"], id);

    let facilitator = app.token("facilitator-sam", Role::Facilitator, "north");
    // Three sessions since joining (attendance must list the roster as it was when held).
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let held_at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let session = app
            .graphql(
                &facilitator,
                "mutation($g: ID!, $at: DateTime!, $m: ID!) { recordSession(groupId: $g, topic: \"Handling cravings\", heldAt: $at, attendance: [{ memberId: $m, status: PRESENT }]) { id heldAt attendance { member { id } status } } }",
                json!({ "g": group["id"], "at": held_at, "m": id }),
            )
            .await;
        assert_eq!(
            session["recordSession"]["attendance"][0]["status"],
            "PRESENT"
        );
    }
    let engaged = app
        .graphql(
            &clinician,
            &format!("query($id: ID!) {{ member(id: $id) {{ {MEMBER_FIELDS} }} }}"),
            json!({ "id": id }),
        )
        .await;
    assert_eq!(engaged["member"]["sessionsAttendedLast7Days"], 3);
    assert_eq!(engaged["member"]["atRisk"], false);
    assert_eq!(engaged["member"]["groups"][0]["id"], group["id"]);

    let discharged = app
        .graphql(
            &clinician,
            &member_mutation("dischargeMember", "reason: COMPLETED"),
            json!({ "id": id }),
        )
        .await;
    let discharged = &discharged["dischargeMember"];
    assert_eq!(discharged["stage"], "AFTERCARE");
    let offsets: Vec<i64> = discharged["followUps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["dayOffset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, [7, 30, 90, 180, 365]);

    // The staff follow-up list names the alumnus of each follow-up due (loaded for the whole
    // list at once), and leaves members out when the query does not ask for them.
    let due = app
        .graphql(
            &clinician,
            "{ followUpsDue(withinDays: 8) { dayOffset member { id name stage } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        due["followUpsDue"],
        json!([{ "dayOffset": 7, "member": { "id": id, "name": "Robin Example", "stage": "AFTERCARE" } }])
    );
    let due = app
        .graphql(&clinician, "{ followUpsDue { dayOffset } }", json!({}))
        .await;
    assert_eq!(due["followUpsDue"], json!([{ "dayOffset": 7 }]));

    let board = app
        .graphql(
            &clinician,
            "{ pipeline { stages { stage count } inTreatmentByLevel { levelOfCare count } } }",
            json!({}),
        )
        .await;
    let aftercare = board["pipeline"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "AFTERCARE")
        .unwrap()["count"]
        .clone();
    assert_eq!(aftercare, 1);

    let follow_up = discharged["followUps"][0]["id"].clone();
    let recorded = app
        .graphql(
            &clinician,
            "mutation($f: ID!) { recordFollowUp(followUpId: $f, outcome: ABSTINENT) { id dayOffset outcome member { id } } }",
            json!({ "f": follow_up }),
        )
        .await;
    assert_eq!(recorded["recordFollowUp"]["outcome"], "ABSTINENT");
    let outcomes = app.graphql(&clinician, OUTCOMES, json!({})).await;
    let day7 = &outcomes["outcomes"]["rows"][0];
    assert_eq!(day7["dayOffset"], 7);
    assert_eq!(day7["recorded"], 1);

    let alumni = app
        .graphql(
            &clinician,
            "mutation($id: ID!) { enrollAlumni(memberId: $id) { stage } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(alumni["enrollAlumni"]["stage"], "ALUMNI");

    // The auditor sees the whole story, and who read it.
    let auditor = app.token("auditor-ana", Role::Auditor, "north");
    let history = app
        .graphql(&auditor, "query($id: ID!) { member(id: $id) { history(first: 100) { edges { node { type version actor } } } } }", json!({ "id": id }))
        .await;
    let types: Vec<&str> = history["member"]["history"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "MemberReferred",
            "IntakeCompleted",
            "MemberAdmitted",
            "MemberDischarged",
            "AftercareStarted",
            "FollowUpCompleted",
            "AlumniEnrolled"
        ]
    );
    let log = app
        .graphql(&auditor, "query($id: ID!) { accessLog(memberId: $id, first: 200) { edges { node { actor operation action allowed } } } }", json!({ "id": id }))
        .await;
    let readers: std::collections::BTreeSet<&str> = log["accessLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["actor"].as_str().unwrap())
        .collect();
    assert!(
        readers.contains("dr-lee") && readers.contains("auditor-ana"),
        "{readers:?}"
    );
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn time_travel_shows_the_member_as_they_were(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let member = admitted(&app, &clinician, "Casey Example").await;
    let id = member["id"].clone();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let between = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    app.graphql(
        &clinician,
        &member_mutation("dischargeMember", "reason: AGAINST_ADVICE"),
        json!({ "id": id }),
    )
    .await;

    let auditor = app.token("auditor", Role::Auditor, "north");
    let then = app
        .graphql(&auditor, "query($id: ID!, $at: DateTime!) { memberAsOf(id: $id, at: $at) { stage levelOfCare version } }", json!({ "id": id, "at": between }))
        .await;
    assert_eq!(
        then["memberAsOf"],
        json!({ "stage": "IN_TREATMENT", "levelOfCare": "INTENSIVE_OUTPATIENT", "version": 3 })
    );
    let now = app
        .graphql(
            &auditor,
            "query($id: ID!) { member(id: $id) { stage version } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        now["member"],
        json!({ "stage": "DISCHARGED", "version": 4 })
    );
    let before = app
        .graphql(
            &auditor,
            "query($id: ID!) { memberAsOf(id: $id, at: \"2000-01-01T00:00:00Z\") { stage } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(before["memberAsOf"], Value::Null);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn rules_refuse_with_conflict_and_bad_input_with_bad_user_input(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let member = refer(&app, &clinician, "Jordan Example").await;
    let id = member["id"].clone();

    // Discharge before admission: a rule refuses.
    let (code, message) = app
        .graphql_error(
            Some(&clinician),
            &member_mutation("dischargeMember", "reason: COMPLETED"),
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code, "CONFLICT", "{message}");
    assert!(!message.contains("Jordan"), "no names in errors: {message}");

    // A stale expected version.
    let (code, _) = app
        .graphql_error(
            Some(&clinician),
            &member_mutation("completeIntake", "recommendedLevel: OUTPATIENT"),
            json!({ "id": id, "v": 7 }),
        )
        .await;
    assert_eq!(code, "CONFLICT");

    // Invalid input.
    let (code, message) = app
        .graphql_error(
            Some(&clinician),
            "mutation { referMember(name: \"   \", source: SELF) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("name"), "{message}");
    let (code, message) = app
        .graphql_error(
            Some(&clinician),
            "mutation { referMember(name: \"A B\", email: \"not-an-email\", source: SELF) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("email"), "{message}");
    let (code, message) = app
        .graphql_error(
            Some(&clinician),
            "mutation { formGroup(name: \"G\", model: SUPPORT, capacity: 51) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("capacity"), "{message}");
    let (code, message) = app
        .graphql_error(
            Some(&clinician),
            "query { member(id: \"not-a-uuid\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("not an id"), "{message}");

    // Nothing was written by the refusals: still one event.
    let auditor = app.token("auditor", Role::Auditor, "north");
    let events = app
        .graphql(
            &auditor,
            "{ events(first: 100) { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(events["events"]["edges"].as_array().unwrap().len(), 1);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn each_role_may_do_only_what_it_is_allowed(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let member = admitted(&app, &clinician, "Alex Example").await;
    let id = member["id"].clone();
    let refer_query = "mutation { referMember(name: \"New Person\", source: FAMILY) { id } }";
    let discharge = member_mutation("dischargeMember", "reason: TRANSFERRED");

    let auditor = app.token("auditor", Role::Auditor, "north");
    assert_eq!(
        app.graphql_error(Some(&auditor), refer_query, json!({}))
            .await
            .0,
        "FORBIDDEN"
    );
    let intake = app.token("front-desk", Role::Intake, "north");
    assert_eq!(
        app.graphql_error(Some(&intake), &discharge, json!({ "id": id }))
            .await
            .0,
        "FORBIDDEN"
    );
    let facilitator = app.token("facilitator-sam", Role::Facilitator, "north");
    assert_eq!(
        app.graphql_error(Some(&facilitator), refer_query, json!({}))
            .await
            .0,
        "FORBIDDEN"
    );
    // The outcomes report counts follow-ups, a clinical read: not for intake or facilitators.
    for token in [&intake, &facilitator] {
        assert_eq!(
            app.graphql_error(Some(token), OUTCOMES, json!({})).await.0,
            "FORBIDDEN"
        );
    }
    app.graphql(&auditor, OUTCOMES, json!({})).await;
    // A facilitator reads only members of the groups they run.
    let (code, _) = app
        .graphql_error(
            Some(&facilitator),
            "query($id: ID!) { member(id: $id) { name } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    let group = form_group(&app, &clinician, 5, "facilitator-sam").await;
    app.graphql(
        &clinician,
        "mutation($g: ID!, $m: ID!) { joinGroup(groupId: $g, memberId: $m) { id } }",
        json!({ "g": group["id"], "m": id }),
    )
    .await;
    let read = app
        .graphql(
            &facilitator,
            "query($id: ID!) { member(id: $id) { name } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(read["member"]["name"], "Alex Example");
    // Another facilitator may not record this group's sessions.
    let other = app.token("facilitator-kim", Role::Facilitator, "north");
    let (code, _) = app
        .graphql_error(
            Some(&other),
            "mutation($g: ID!, $m: ID!) { recordSession(groupId: $g, topic: \"x\", heldAt: \"2026-01-01T10:00:00Z\", attendance: [{ memberId: $m, status: PRESENT }]) { id } }",
            json!({ "g": group["id"], "m": id }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    // The refused read was logged as refused.
    let log = app
        .graphql(&auditor, "query($id: ID!) { accessLog(memberId: $id, first: 100) { edges { node { actor allowed } } } }", json!({ "id": id }))
        .await;
    assert!(log["accessLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["node"]["actor"] == "facilitator-sam" && e["node"]["allowed"] == false));
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn one_clinic_never_sees_or_changes_another_clinics_members(pool: PgPool) {
    let app = spawn_app(pool).await;
    let north = app.token("dr-lee", Role::Clinician, "north");
    let south = app.token("dr-south", Role::Clinician, "south");
    let member = admitted(&app, &north, "Sam Example").await;
    let id = member["id"].clone();

    let read = app
        .graphql(
            &south,
            "query($id: ID!) { member(id: $id) { name } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(read["member"], Value::Null, "not even by guessing the id");
    let list = app
        .graphql(
            &south,
            "{ members { totalCount edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(list["members"]["totalCount"], 0);
    let (code, _) = app
        .graphql_error(
            Some(&south),
            &member_mutation("dischargeMember", "reason: COMPLETED"),
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code, "NOT_FOUND", "south has no member of that id");
    let still = app
        .graphql(
            &north,
            "query($id: ID!) { member(id: $id) { stage } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(still["member"]["stage"], "IN_TREATMENT");
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn concurrent_joins_never_overfill_a_group(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let group = form_group(&app, &clinician, 3, "facilitator-sam").await;
    let mut members = Vec::new();
    for n in 0..8 {
        members.push(admitted(&app, &clinician, &format!("Member {n}")).await["id"].clone());
    }
    let joins = members.iter().map(|m| {
        app.graphql_raw(
            Some(&clinician),
            "mutation($g: ID!, $m: ID!) { joinGroup(groupId: $g, memberId: $m) { id } }",
            json!({ "g": group["id"], "m": m }),
        )
    });
    let results = futures::future::join_all(joins).await;
    let joined = results
        .iter()
        .filter(|(_, body)| body.get("errors").is_none())
        .count();
    assert_eq!(joined, 3, "exactly the capacity");
    assert!(results
        .iter()
        .filter(|(_, body)| body.get("errors").is_some())
        .all(|(_, body)| body["errors"][0]["extensions"]["code"] == "CONFLICT"));
    let roster = app
        .graphql(
            &clinician,
            "query($g: ID!) { group(id: $g) { members { id } } }",
            json!({ "g": group["id"] }),
        )
        .await;
    assert_eq!(roster["group"]["members"].as_array().unwrap().len(), 3);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_retried_mutation_with_the_same_idempotency_key_appends_nothing_twice(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let member = admitted(&app, &clinician, "Retry Example").await;
    let id = member["id"].clone();
    let body = json!({ "query": member_mutation("dischargeMember", "reason: COMPLETED"), "variables": { "id": id } });
    let mut versions = Vec::new();
    for _ in 0..2 {
        let response: Value = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(&clinician)
            .header("idempotency-key", "discharge-retry-1")
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(response.get("errors").is_none(), "{response}");
        versions.push(response["data"]["dischargeMember"]["version"].clone());
    }
    assert_eq!(versions[0], versions[1], "the retry appended nothing");
    assert_eq!(versions[0], 5, "admitted at 3; discharge + aftercare");

    // What a mutation creates (a member, a group, a session) is named by the key too: a retry
    // finds it recorded and answers with it, rather than creating a second one.
    let send = |key: &'static str, query: &'static str, variables: Value| {
        let answer = app.graphql_keyed(&clinician, key, query, variables);
        async move {
            let response = answer.await;
            assert!(response.get("errors").is_none(), "{response}");
            response["data"].clone()
        }
    };
    let refer = "mutation { referMember(name: \"Twice Sent\", source: SELF) { id version } }";
    let first = send("refer-retry-1", refer, json!({})).await;
    let again = send("refer-retry-1", refer, json!({})).await;
    assert_eq!(first, again, "the same member, recorded once");
    let total = app
        .graphql(
            &clinician,
            "{ members(first: 0) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        total["members"]["totalCount"], 2,
        "Retry Example and Twice Sent"
    );
    let group = form_group(&app, &clinician, 12, "facilitator-sam").await;
    let plan = "mutation($g: ID!) { scheduleSession(groupId: $g, startsAt: \"2030-01-01T10:00:00Z\", topic: \"Planning ahead\") { id status } }";
    let first = send("plan-retry-1", plan, json!({ "g": group["id"] })).await;
    let again = send("plan-retry-1", plan, json!({ "g": group["id"] })).await;
    assert_eq!(first, again, "the same session, scheduled once");

    // One key names one thing per field: two aliased referrals in one request are two members.
    let two = send(
        "refer-two-1",
        "mutation { a: referMember(name: \"Ann Alias\", source: SELF) { id name } b: referMember(name: \"Bo Alias\", source: SELF) { id name } }",
        json!({}),
    )
    .await;
    assert_ne!(two["a"]["id"], two["b"]["id"], "{two}");
    // ... and two aliased consents for one member are two consents, not a retry of the first.
    let consents = "mutation($id: ID!) { a: giveConsent(memberId: $id, scope: EMAIL_OUTREACH) { id } b: giveConsent(memberId: $id, scope: FAMILY_CONTACT) { id } }";
    send("consents-1", consents, json!({ "id": two["a"]["id"] })).await;
    let listed = app
        .graphql(
            &clinician,
            "query($id: ID!) { member(id: $id) { consents { scope } } }",
            json!({ "id": two["a"]["id"] }),
        )
        .await;
    assert_eq!(
        listed["member"]["consents"],
        json!([{ "scope": "EMAIL_OUTREACH" }, { "scope": "FAMILY_CONTACT" }])
    );
    assert_eq!(
        (two["a"]["name"].as_str(), two["b"]["name"].as_str()),
        (Some("Ann Alias"), Some("Bo Alias"))
    );

    // A key that cannot name a request is refused, not ignored (ignored, the retry would
    // refer the person again; an empty key shared by all would make every later mutation a
    // "retry" of the first), and nothing is stored.
    let stored = app.events_stored().await;
    for key in ["", "two words", "\u{e9}t\u{e9}"] {
        let refused = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(&clinician)
            .header(
                "idempotency-key",
                reqwest::header::HeaderValue::from_bytes(key.as_bytes()).unwrap(),
            )
            .json(&json!({ "query": refer }))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{key:?}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("Idempotency-Key"), "{body}");
    }
    assert_eq!(app.events_stored().await, stored);
}

/// A key names one request. Sent again with other arguments it is no retry: answering it as
/// one would silently drop the second request (another person never referred), so it is
/// refused and nothing is stored. The request's digest is kept with the first event, sealed
/// under the member's key where the request was about a member.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn an_idempotency_key_sent_again_with_other_arguments_is_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let send = |key: &'static str, query: &'static str, variables: Value| {
        app.graphql_keyed(&clinician, key, query, variables)
    };
    let refer = "mutation($name: String!) { referMember(name: $name, source: SELF) { id name } }";
    // First as variables: the enum as a string, an optional argument sent as null.
    let as_variables = "mutation($name: String!, $source: ReferralSource!, $email: String) { referMember(name: $name, source: $source, email: $email) { id name } }";
    let first = send(
        "reuse-1",
        as_variables,
        json!({ "name": "Key Holder", "source": "SELF", "email": null }),
    )
    .await;
    assert!(first.get("errors").is_none(), "{first}");
    // The same request spelled otherwise (inline, arguments reordered, email left out) is a
    // retry, and so is the first spelling again.
    let inline = "mutation { referMember(source: SELF, name: \"Key Holder\") { id name } }";
    let again = send("reuse-1", inline, json!({})).await;
    assert_eq!(again["data"], first["data"], "{again}");
    let again = send("reuse-1", refer, json!({ "name": "Key Holder" })).await;
    assert_eq!(again["data"], first["data"], "{again}");

    let stored = app.events_stored().await;
    let other = send("reuse-1", refer, json!({ "name": "Someone Else" })).await;
    assert_eq!(
        other["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{other}"
    );
    let message = other["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("different request"), "{other}");
    assert_eq!(app.events_stored().await, stored, "nothing stored");
    let names = app
        .graphql(
            &clinician,
            "{ members(first: 10) { edges { node { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        names["members"]["edges"],
        json!([{ "node": { "name": "Key Holder" } }])
    );

    // Sent at the same moment, the store sees the second request's events as already stored
    // (their ids come from the key): it still gets the check, not the first one's answer.
    for round in 0..8 {
        let key: &'static str = Box::leak(format!("race-{round}").into_boxed_str());
        let (a, b) = tokio::join!(
            send(key, refer, json!({ "name": "Racer One" })),
            send(key, refer, json!({ "name": "Racer Two" })),
        );
        let refused = [&a, &b]
            .iter()
            .filter(|answer| answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT")
            .count();
        assert_eq!(refused, 1, "round {round}: {a} {b}");
    }

    // The digest is on the member's first event, sealed: nothing of the request in clear.
    let request: String =
        sqlx::query_scalar("SELECT metadata->>'request' FROM events WHERE type = 'MemberReferred'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(request.starts_with("enc:v1:"), "{request}");

    // A request about no member (a session's plan) keeps its digest plain, and is checked too.
    let group = form_group(&app, &clinician, 12, "facilitator-sam").await;
    let plan = "mutation($g: ID!, $topic: String!) { scheduleSession(groupId: $g, startsAt: \"2030-01-01T10:00:00Z\", topic: $topic) { id } }";
    let planned = send(
        "plan-reuse-1",
        plan,
        json!({ "g": group["id"], "topic": "Planning ahead" }),
    )
    .await;
    assert!(planned.get("errors").is_none(), "{planned}");
    let replanned = send(
        "plan-reuse-1",
        plan,
        json!({ "g": group["id"], "topic": "Something else" }),
    )
    .await;
    assert_eq!(
        replanned["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{replanned}"
    );
    let digest: String = sqlx::query_scalar(
        "SELECT metadata->>'request' FROM events WHERE type = 'SessionScheduled'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "{digest}"
    );
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn member_lists_page_with_a_total_count(pool: PgPool) {
    let app = spawn_app(pool).await;
    let intake = app.token("front-desk", Role::Intake, "north");
    for n in 0..5 {
        refer(&app, &intake, &format!("Person {n}")).await;
    }
    let query = "query($after: String) { members(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { name } } } }";
    let mut names = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app.graphql(&intake, query, json!({ "after": after })).await;
        let page = &page["members"];
        assert_eq!(page["totalCount"], 5);
        names.extend(
            page["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["name"].as_str().unwrap().to_owned()),
        );
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(
        names,
        (0..5).map(|n| format!("Person {n}")).collect::<Vec<_>>()
    );
    let (code, message) = app
        .graphql_error(
            Some(&intake),
            "{ members(after: \"bogus\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("cursor"), "{message}");
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_member_page_is_logged_as_one_row_and_audited_per_member(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let auditor = app.token("auditor-ana", Role::Auditor, "north");
    let mut ids = Vec::new();
    for name in ["Casey Example", "Robin Example", "Jordan Example"] {
        ids.push(
            admitted(&app, &clinician, name).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let logged_before: i64 = sqlx::query_scalar("SELECT count(*) FROM access_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    app.graphql(
        &clinician,
        "{ members(first: 50) { edges { node { id name } } } }",
        json!({}),
    )
    .await;
    let rows: Vec<(Option<Vec<uuid::Uuid>>, String)> =
        sqlx::query_as("SELECT member_ids, action FROM access_log ORDER BY id OFFSET $1")
            .bind(logged_before)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1, "one row for the page: {rows:?}");
    assert_eq!(rows[0].1, "query");
    assert_eq!(rows[0].0.as_ref().map(Vec::len), Some(3));

    for id in &ids {
        let log = app
            .graphql(&auditor, "query($id: ID!) { accessLog(memberId: $id, first: 100) { edges { node { memberId actor action } } } }", json!({ "id": id }))
            .await;
        let queries: Vec<&Value> = log["accessLog"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["node"]["action"] == "query")
            .collect();
        assert_eq!(queries.len(), 1, "{id}: {log}");
        assert_eq!(queries[0]["node"]["memberId"], json!(id));
        assert_eq!(queries[0]["node"]["actor"], "dr-lee");
    }

    // A page that shows each member's attendance is an attendance read as well.
    let last: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM access_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    app.graphql(
        &clinician,
        "{ members(first: 50) { edges { node { id atRisk } } } }",
        json!({}),
    )
    .await;
    let categories: Vec<String> =
        sqlx::query_scalar("SELECT category FROM access_log WHERE id > $1 ORDER BY id")
            .bind(last)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        categories,
        ["attendance"],
        "one row, the category that covers both"
    );
    // Unless the caller may not see attendance (intake): then the fields are refused, the page
    // is the profile read it was, and each member's refused field is logged as denied.
    let intake = app.token("front-desk", Role::Intake, "north");
    let (code, _) = app
        .graphql_error(
            Some(&intake),
            "{ members(first: 50) { edges { node { id atRisk } } } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    let categories: Vec<(String, bool)> = sqlx::query_as(
        "SELECT category, allowed FROM access_log WHERE id > $1 AND actor = 'front-desk' ORDER BY id",
    )
    .bind(last)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(categories[0], ("profile".to_owned(), true));
    assert_eq!(
        categories[1..],
        vec![("attendance".to_owned(), false); ids.len()],
        "{categories:?}"
    );
}

/// A member admitted by `clinician` on the roster of a new group dr-lee facilitates: the
/// member's id and the group.
async fn member_in_a_group(app: &clinic_tests::TestApp, clinician: &str) -> (Value, Value) {
    let member = admitted(app, clinician, "Casey Example").await;
    let id = member["id"].clone();
    let group = form_group(app, clinician, 12, "dr-lee").await;
    app.graphql(
        clinician,
        "mutation($g: ID!, $m: ID!) { joinGroup(groupId: $g, memberId: $m) { id } }",
        json!({ "g": group["id"], "m": id }),
    )
    .await;
    (id, group)
}

/// What staff say is what is recorded: a check-in's channel, a referral's primary substance
/// (sealed like the name, never in clear in the log).
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_check_ins_channel_and_a_referrals_substance_are_recorded_as_given(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let referred = app
        .graphql(
            &clinician,
            "mutation { referMember(name: \"Casey Example\", source: SELF, primarySubstance: \"opioids\") { id } }",
            json!({}),
        )
        .await;
    let id = referred["referMember"]["id"].clone();
    for (step, args) in [
        ("completeIntake", "recommendedLevel: OUTPATIENT"),
        ("admitMember", "levelOfCare: OUTPATIENT"),
    ] {
        app.graphql(
            &clinician,
            &member_mutation(step, args),
            json!({ "id": id }),
        )
        .await;
    }
    for channel in ["IN_PERSON", "APP"] {
        app.graphql(
            &clinician,
            &format!("mutation($id: ID!, $due: DateTime!) {{ scheduleCheckIn(memberId: $id, dueAt: $due, channel: {channel}) {{ id }} }}"),
            json!({ "id": id, "due": rfc3339(time::OffsetDateTime::now_utc() + time::Duration::days(1)) }),
        )
        .await;
    }
    app.graphql(
        &clinician,
        "mutation($id: ID!, $due: DateTime!) { scheduleCheckIn(memberId: $id, dueAt: $due) { id } }",
        json!({ "id": id, "due": rfc3339(time::OffsetDateTime::now_utc() + time::Duration::days(2)) }),
    )
    .await;
    let channels: Vec<String> = sqlx::query_scalar(
        "SELECT data ->> 'channel' FROM events WHERE type = 'CheckInScheduled' ORDER BY position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(channels, ["in_person", "app", "call"]);
    let substance: String = sqlx::query_scalar(
        "SELECT data ->> 'primary_substance' FROM events WHERE type = 'MemberReferred'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        !substance.is_empty() && !substance.contains("opioids"),
        "sealed: {substance}"
    );
}

/// Time travel shows the groups the member was on then: joined by that moment and not yet left
/// (the read models keep only today's rosters).
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn time_travel_shows_the_groups_the_member_was_on_then(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let auditor = app.token("auditor", Role::Auditor, "north");
    let member = admitted(&app, &clinician, "Casey Example").await;
    let id = member["id"].clone();
    let first = form_group(&app, &clinician, 12, "dr-lee").await["id"].clone();
    let second = form_group(&app, &clinician, 12, "dr-lee").await["id"].clone();
    let moment = || async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let now = rfc3339(time::OffsetDateTime::now_utc());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        now
    };
    let change = |mutation: &'static str, group: Value| {
        let (app, clinician, id) = (&app, &clinician, id.clone());
        async move {
            app.graphql(
                clinician,
                &format!("mutation($g: ID!, $m: ID!) {{ {mutation} {{ id }} }}"),
                json!({ "g": group, "m": id }),
            )
            .await;
        }
    };
    let join = "joinGroup(groupId: $g, memberId: $m)";
    let leave = "leaveGroup(groupId: $g, memberId: $m, reason: \"moved to evenings\")";
    let before_any = moment().await;
    change(join, first.clone()).await;
    let on_first = moment().await;
    change(join, second.clone()).await;
    let on_both = moment().await;
    change(leave, first.clone()).await;
    let on_second = moment().await;

    let mut seen = Vec::new();
    for at in [&before_any, &on_first, &on_both, &on_second] {
        let then = app
            .graphql(
                &auditor,
                "query($id: ID!, $at: DateTime!) { memberAsOf(id: $id, at: $at) { groups { id } } }",
                json!({ "id": id, "at": at }),
            )
            .await;
        let mut groups: Vec<String> = then["memberAsOf"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["id"].as_str().unwrap().to_owned())
            .collect();
        groups.sort();
        seen.push(groups);
    }
    let ids = |groups: &[&Value]| {
        let mut ids: Vec<String> = groups
            .iter()
            .map(|g| g.as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        seen,
        [
            ids(&[]),
            ids(&[&first]),
            ids(&[&first, &second]),
            ids(&[&second]),
        ]
    );
}

/// Time travel counts engagement from what was recorded by then: a session recorded later
/// (even one held earlier) and a later correction are not part of the member as they were.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn time_travel_counts_the_attendance_recorded_by_then(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let (id, group) = member_in_a_group(&app, &clinician).await;
    let record = |held_at: time::OffsetDateTime| {
        let app = &app;
        let clinician = &clinician;
        let (group, id) = (group["id"].clone(), id.clone());
        async move {
            app.graphql(
                clinician,
                "mutation($g: ID!, $at: DateTime!, $m: ID!) { recordSession(groupId: $g, topic: \"Handling cravings\", heldAt: $at, attendance: [{ memberId: $m, status: PRESENT }]) { id } }",
                json!({ "g": group, "at": rfc3339(held_at), "m": id }),
            )
            .await["recordSession"]["id"]
                .clone()
        }
    };
    let as_of = |at: time::OffsetDateTime| {
        let app = &app;
        let id = id.clone();
        async move {
            let auditor = app.token("auditor", Role::Auditor, "north");
            app.graphql(
                &auditor,
                "query($id: ID!, $at: DateTime!) { memberAsOf(id: $id, at: $at) { sessionsAttendedLast7Days atRisk } }",
                json!({ "id": id, "at": rfc3339(at) }),
            )
            .await["memberAsOf"]
                .clone()
        }
    };
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(50));

    // A session recorded as attended, then corrected to absent: before the correction the
    // member had attended it.
    pause().await;
    let first = record(time::OffsetDateTime::now_utc()).await;
    pause().await;
    let before_correction = time::OffsetDateTime::now_utc();
    pause().await;
    app.graphql(
        &clinician,
        "mutation($g: ID!, $s: ID!, $m: ID!) { correctAttendance(groupId: $g, sessionId: $s, memberId: $m, status: ABSENT, reason: \"signed in by mistake\") { id } }",
        json!({ "g": group["id"], "s": first, "m": id }),
    )
    .await;
    assert_eq!(
        as_of(before_correction).await,
        json!({ "sessionsAttendedLast7Days": 1, "atRisk": true }),
        "as recorded then: attended"
    );

    // A session held before `then` but recorded after it was not part of the record then.
    pause().await;
    let late_session_held = time::OffsetDateTime::now_utc();
    pause().await;
    let then = time::OffsetDateTime::now_utc();
    pause().await;
    record(late_session_held).await;
    assert_eq!(
        as_of(then).await["sessionsAttendedLast7Days"],
        0,
        "the late session was not recorded yet, the first was corrected"
    );
    assert_eq!(
        as_of(time::OffsetDateTime::now_utc()).await["sessionsAttendedLast7Days"],
        1,
        "now both are in the record: the late session counts, the corrected one does not"
    );
    let today = app
        .graphql(
            &clinician,
            "query($id: ID!) { member(id: $id) { sessionsAttendedLast7Days } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(today["member"]["sessionsAttendedLast7Days"], 1);
}

/// Time travel finds the member's groups in the groups read model: while that model lags
/// behind the log (here: its runner held at the checkpoint), memberAsOf waits for it instead
/// of leaving out a group it has not applied yet.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn time_travel_waits_for_a_lagging_groups_read_model(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let (id, group) = member_in_a_group(&app, &clinician).await;

    // The runners stop before their next page: this transaction locks their checkpoints
    // against writers, and still lets readers (the API's freshness check) through. (A table lock, not
    // a row lock: a row lock would take a transaction id, and an open transaction id anywhere
    // on the server holds back every commit-safe reader, other tests' servers included.)
    // Connections of the test's own: the runners waiting at the lock hold pooled ones.
    let options = pool.connect_options();
    let connect = || sqlx::PgConnection::connect_with(&options);
    let (mut hold, mut look) = (connect().await.unwrap(), connect().await.unwrap());
    let mut hold = hold.begin().await.unwrap();
    sqlx::query("LOCK TABLE projection_checkpoints IN EXCLUSIVE MODE")
        .execute(&mut *hold)
        .await
        .unwrap();
    // Requests in tasks of their own, so the test can look on while they wait.
    let send = |token: String, query: &'static str, variables: Value| {
        let request = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }));
        tokio::spawn(async move {
            let response = request.send().await.unwrap();
            response.json::<Value>().await.unwrap()
        })
    };
    let recorded = send(
        clinician.clone(),
        "mutation($g: ID!, $m: ID!, $at: DateTime!) { recordSession(groupId: $g, topic: \"Handling cravings\", heldAt: $at, attendance: [{ memberId: $m, status: PRESENT }]) { id } }",
        json!({ "g": group["id"], "m": id, "at": rfc3339(time::OffsetDateTime::now_utc()) }),
    );
    // The session is in the log (the mutation itself waits for the read models).
    // (Within 2 s: the mutation answers INTERNAL after its own 5 s wait.)
    let mut stored = 0_i64;
    for _ in 0..200 {
        stored = sqlx::query_scalar("SELECT count(*) FROM events WHERE type = 'SessionHeld'")
            .fetch_one(&mut look)
            .await
            .unwrap();
        if stored == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(stored, 1, "the session was recorded");
    let at = rfc3339(time::OffsetDateTime::now_utc());
    let as_of = send(
        app.token("auditor", Role::Auditor, "north"),
        "query($id: ID!, $at: DateTime!) { memberAsOf(id: $id, at: $at) { sessionsAttendedLast7Days } }",
        json!({ "id": id, "at": at }),
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    if as_of.is_finished() {
        panic!("memberAsOf did not wait: {}", as_of.await.unwrap());
    }
    hold.rollback().await.unwrap();
    let answer = as_of.await.unwrap();
    assert_eq!(
        answer["data"]["memberAsOf"]["sessionsAttendedLast7Days"], 1,
        "{answer}"
    );
    let recorded = recorded.await.unwrap();
    assert!(recorded["errors"].is_null(), "{recorded}");
}

/// The role rules hold however a field is reached: a facilitator sees only the groups they run
/// (also through a member of their roster); intake reads profiles, not attendance, check-ins,
/// outcomes or the at-risk list; clinical reads of check-ins and outcomes, and an auditor's
/// page of the raw log, are access-logged under their own categories.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn nested_fields_keep_each_roles_limits_and_are_logged(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let facilitator = app.token("fac-sam", Role::Facilitator, "north");
    let intake = app.token("front-desk", Role::Intake, "north");
    let auditor = app.token("auditor-ana", Role::Auditor, "north");
    let member = admitted(&app, &clinician, "Casey Example").await;
    let id = member["id"].clone();
    let theirs = form_group(&app, &clinician, 12, "fac-sam").await;
    let other = form_group(&app, &clinician, 12, "fac-kim").await;
    for group in [&theirs, &other] {
        app.graphql(
            &clinician,
            "mutation($g: ID!, $m: ID!) { joinGroup(groupId: $g, memberId: $m) { id } }",
            json!({ "g": group["id"], "m": id }),
        )
        .await;
    }

    // The facilitator reaches the member through their group: the member's groups are the
    // ones they run, so the other group's roster and sessions stay out of reach.
    let seen = app
        .graphql(
            &facilitator,
            "query($g: ID!) { group(id: $g) { members { groups { id members { id } sessions { id } } } } }",
            json!({ "g": theirs["id"] }),
        )
        .await;
    assert_eq!(
        seen["group"]["members"][0]["groups"],
        json!([{ "id": theirs["id"], "members": [{ "id": id }], "sessions": [] }])
    );
    // Attendance counted across every group is not theirs to see either.
    let (code, _) = app
        .graphql_error(
            Some(&facilitator),
            "query($g: ID!) { group(id: $g) { members { sessionsAttendedLast7Days } } }",
            json!({ "g": theirs["id"] }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");

    // Intake: profiles yes; attendance, check-ins, outcomes and the at-risk list no.
    let profile = app
        .graphql(
            &intake,
            "query($id: ID!) { member(id: $id) { name stage } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(profile["member"]["name"], "Casey Example");
    for query in [
        "query($id: ID!) { member(id: $id) { atRisk } }",
        "query($id: ID!) { member(id: $id) { sessionsAttendedLast7Days } }",
        "query($id: ID!) { member(id: $id) { consecutiveMissedCheckIns } }",
        "query($id: ID!) { member(id: $id) { groups { id } } }",
        "query($id: ID!) { member(id: $id) { checkIns { id } } }",
        "query($id: ID!) { member(id: $id) { followUps { id } } }",
        "{ members(atRisk: true) { totalCount } }",
        "{ groups { edges { node { sessions { id } } } } }",
        "{ groups { edges { node { members { id } } } } }",
    ] {
        let (code, _) = app
            .graphql_error(Some(&intake), query, json!({ "id": id }))
            .await;
        assert_eq!(code, "FORBIDDEN", "{query}");
    }

    // A mutation intake may run, answering with a field intake may not read (even through a
    // fragment, under an alias): refused before it writes.
    let before = app.events_stored().await;
    for answer in [
        "id atRisk",
        "id ... on Member { risk: atRisk }",
        "id groups { id }",
    ] {
        let (code, _) = app
            .graphql_error(
                Some(&intake),
                &format!("mutation {{ referMember(name: \"Dale Example\", source: SELF) {{ {answer} }} }}"),
                json!({}),
            )
            .await;
        assert_eq!(code, "FORBIDDEN", "{answer}");
    }
    let after = app.events_stored().await;
    assert_eq!(before, after, "nothing written");
    // On an existing member the refusal is logged as a denied read of what was asked.
    let (code, _) = app
        .graphql_error(
            Some(&intake),
            &member_mutation_answering(
                "completeIntake",
                "recommendedLevel: OUTPATIENT",
                "id history { edges { cursor } }",
            ),
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    // A facilitator's session whose answer reaches a member's clinical fields: refused too.
    let (code, _) = app
        .graphql_error(
            Some(&facilitator),
            "mutation($g: ID!, $m: ID!) { recordSession(groupId: $g, topic: \"Coping skills\", heldAt: \"2026-01-05T10:00:00Z\", attendance: [{ memberId: $m, status: PRESENT }]) { id attendance { member { atRisk } } } }",
            json!({ "g": theirs["id"], "m": id }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    let after = app.events_stored().await;
    assert_eq!(before, after, "still nothing written");
    // A field the request itself leaves out is not read, so not refused.
    let referred = app
        .graphql(
            &intake,
            "mutation($clinical: Boolean!) { referMember(name: \"Eli Example\", source: SELF) { id atRisk @include(if: $clinical) } }",
            json!({ "clinical": false }),
        )
        .await;
    assert!(referred["referMember"]["id"].is_string(), "{referred}");

    // A clinician's reads of check-ins and outcomes, and an auditor's page of the log, each
    // name the member in the access log under their category.
    app.graphql(
        &clinician,
        "query($id: ID!) { member(id: $id) { checkIns { id } followUps { id } } }",
        json!({ "id": id }),
    )
    .await;
    app.graphql(
        &auditor,
        "{ events(first: 100) { edges { node { position } } } }",
        json!({}),
    )
    .await;
    let log = app
        .graphql(
            &auditor,
            "query($id: ID!) { accessLog(memberId: $id, first: 200) { edges { node { actor category allowed } } } }",
            json!({ "id": id }),
        )
        .await;
    let entries: Vec<(String, String, bool)> = log["accessLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let node = &e["node"];
            (
                node["actor"].as_str().unwrap().to_owned(),
                node["category"].as_str().unwrap().to_owned(),
                node["allowed"].as_bool().unwrap(),
            )
        })
        .collect();
    for expected in [
        ("dr-lee", "CHECK_INS", true),
        ("dr-lee", "OUTCOMES", true),
        ("auditor-ana", "HISTORY", true),
        ("front-desk", "CHECK_INS", false),
        ("front-desk", "ATTENDANCE", false),
        ("front-desk", "HISTORY", false),
    ] {
        let expected = (expected.0.to_owned(), expected.1.to_owned(), expected.2);
        assert!(entries.contains(&expected), "{expected:?} in {entries:?}");
    }
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A relapse after discharge: the alumnus is readmitted (history kept, back in treatment) and
/// later stepped down a level; the board follows; the rules and roles refuse what they must.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_relapsed_member_is_readmitted_and_stepped_down(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let intake = app.token("front-desk", Role::Intake, "north");
    let member = admitted(&app, &clinician, "Robin Example").await;
    let id = member["id"].clone();
    let discharged = app
        .graphql(
            &clinician,
            &member_mutation("dischargeMember", "reason: COMPLETED"),
            json!({ "id": id }),
        )
        .await;
    assert_eq!(discharged["dischargeMember"]["stage"], "AFTERCARE");

    let tomorrow = rfc3339(time::OffsetDateTime::now_utc() + time::Duration::days(1));
    let readmit = "mutation($id: ID!, $at: DateTime) { readmitMember(memberId: $id, levelOfCare: RESIDENTIAL, at: $at) { id stage levelOfCare version } }";
    let (code, message) = app
        .graphql_error(
            Some(&clinician),
            readmit,
            json!({ "id": id, "at": tomorrow }),
        )
        .await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("BAD_USER_INPUT", "`at` must not be in the future")
    );
    let (code, _) = app
        .graphql_error(Some(&intake), readmit, json!({ "id": id }))
        .await;
    assert_eq!(code, "FORBIDDEN");

    let readmitted = app.graphql(&clinician, readmit, json!({ "id": id })).await;
    let readmitted = &readmitted["readmitMember"];
    assert_eq!(readmitted["stage"], "IN_TREATMENT");
    assert_eq!(readmitted["levelOfCare"], "RESIDENTIAL");
    // Each follow-up of the first episode (all due after the readmission) is recorded as
    // `readmitted`, so the outcomes report counts the member who came back.
    let outcomes = app.graphql(&clinician, OUTCOMES, json!({})).await;
    let rows = outcomes["outcomes"]["rows"].as_array().unwrap();
    let readmitted_per_offset: Vec<(i64, i64, i64)> = rows
        .iter()
        .map(|row| {
            let count = row["outcomes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["outcome"] == "READMITTED")
                .unwrap()["count"]
                .as_i64()
                .unwrap();
            (
                row["dayOffset"].as_i64().unwrap(),
                row["recorded"].as_i64().unwrap(),
                count,
            )
        })
        .collect();
    assert_eq!(
        readmitted_per_offset,
        [7, 30, 90, 180, 365].map(|d| (d, 1, 1)),
        "{outcomes}"
    );
    let (code, _) = app
        .graphql_error(Some(&clinician), readmit, json!({ "id": id }))
        .await;
    assert_eq!(code, "CONFLICT", "already in treatment");

    let step = "mutation($id: ID!, $to: LevelOfCare!) { changeLevelOfCare(memberId: $id, to: $to, reason: \"stable, stepping down\") { stage levelOfCare } }";
    let stepped = app
        .graphql(
            &clinician,
            step,
            json!({ "id": id, "to": "INTENSIVE_OUTPATIENT" }),
        )
        .await;
    assert_eq!(
        stepped["changeLevelOfCare"],
        json!({ "stage": "IN_TREATMENT", "levelOfCare": "INTENSIVE_OUTPATIENT" })
    );
    let (code, _) = app
        .graphql_error(
            Some(&clinician),
            step,
            json!({ "id": id, "to": "INTENSIVE_OUTPATIENT" }),
        )
        .await;
    assert_eq!(code, "CONFLICT", "already at that level");

    let board = app
        .graphql(
            &clinician,
            "{ pipeline { stages { stage count } inTreatmentByLevel { levelOfCare count } } }",
            json!({}),
        )
        .await;
    let count = |list: &str, key: &str, value: &str| {
        board["pipeline"][list]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s[key] == value)
            .unwrap()["count"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(count("stages", "stage", "IN_TREATMENT"), 1);
    assert_eq!(count("stages", "stage", "AFTERCARE"), 0);
    assert_eq!(
        count("inTreatmentByLevel", "levelOfCare", "INTENSIVE_OUTPATIENT"),
        1
    );
    assert_eq!(count("inTreatmentByLevel", "levelOfCare", "RESIDENTIAL"), 0);

    let auditor = app.token("auditor-kim", Role::Auditor, "north");
    let history = app
        .graphql(
            &auditor,
            "query($id: ID!) { member(id: $id) { history(first: 100) { edges { node { type } } } } }",
            json!({ "id": id }),
        )
        .await;
    let types: Vec<&str> = history["member"]["history"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["type"].as_str().unwrap())
        .collect();
    assert!(
        types.ends_with(&["MemberReadmitted", "LevelOfCareChanged"]),
        "{types:?}"
    );
    app.stop().await.unwrap();
}

/// A session is planned, then held (recorded under its id) or cancelled; a closed group
/// refuses joins and sessions. Facilitators plan the sessions of their own groups only.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn sessions_are_planned_then_held_or_cancelled_and_groups_close(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let facilitator = app.token("facilitator-sam", Role::Facilitator, "north");
    let other_facilitator = app.token("facilitator-ali", Role::Facilitator, "north");
    let member = admitted(&app, &clinician, "Robin Example").await;
    let group = form_group(&app, &clinician, 12, "facilitator-sam").await;
    app.graphql(
        &clinician,
        "mutation($g: ID!, $m: ID!) { joinGroup(groupId: $g, memberId: $m) { id } }",
        json!({ "g": group["id"], "m": member["id"] }),
    )
    .await;

    let now = time::OffsetDateTime::now_utc();
    let plan = "mutation($g: ID!, $at: DateTime!) { scheduleSession(groupId: $g, startsAt: $at, topic: \"Relapse prevention\") { id status startsAt heldAt topic } }";
    let (code, _) = app
        .graphql_error(
            Some(&other_facilitator),
            plan,
            json!({ "g": group["id"], "at": rfc3339(now + time::Duration::days(1)) }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN", "not their group");
    let planned = app
        .graphql(
            &facilitator,
            plan,
            json!({ "g": group["id"], "at": rfc3339(now - time::Duration::minutes(30)) }),
        )
        .await;
    let planned = &planned["scheduleSession"];
    assert_eq!(planned["status"], "scheduled");
    assert!(planned["heldAt"].is_null());
    let dropped = app
        .graphql(
            &facilitator,
            plan,
            json!({ "g": group["id"], "at": rfc3339(now + time::Duration::days(2)) }),
        )
        .await;
    let dropped = &dropped["scheduleSession"];

    let cancel = "mutation($g: ID!, $s: ID!) { cancelSession(groupId: $g, sessionId: $s, reason: \"facilitator ill\") { id status } }";
    let cancelled = app
        .graphql(
            &facilitator,
            cancel,
            json!({ "g": group["id"], "s": dropped["id"] }),
        )
        .await;
    assert_eq!(
        cancelled["cancelSession"],
        json!({ "id": dropped["id"], "status": "cancelled" })
    );
    let (code, _) = app
        .graphql_error(
            Some(&facilitator),
            cancel,
            json!({ "g": group["id"], "s": dropped["id"] }),
        )
        .await;
    assert_eq!(code, "CONFLICT", "cancelled once");

    let record = "mutation($g: ID!, $s: ID, $at: DateTime!, $m: ID!) { recordSession(groupId: $g, sessionId: $s, topic: \"Relapse prevention\", heldAt: $at, attendance: [{ memberId: $m, status: PRESENT }]) { id status heldAt attendance { status } } }";
    let (code, message) = app
        .graphql_error(
            Some(&facilitator),
            record,
            json!({ "g": group["id"], "s": planned["id"], "at": rfc3339(now + time::Duration::days(1)), "m": member["id"] }),
        )
        .await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("BAD_USER_INPUT", "`heldAt` must not be in the future")
    );
    let held = app
        .graphql(
            &facilitator,
            record,
            json!({ "g": group["id"], "s": planned["id"], "at": rfc3339(now), "m": member["id"] }),
        )
        .await;
    let held = &held["recordSession"];
    assert_eq!(held["id"], planned["id"], "the planned session, now held");
    assert_eq!(held["status"], "held");
    assert_eq!(held["attendance"], json!([{ "status": "PRESENT" }]));
    let (code, _) = app
        .graphql_error(
            Some(&facilitator),
            record,
            json!({ "g": group["id"], "s": dropped["id"], "at": rfc3339(now), "m": member["id"] }),
        )
        .await;
    assert_eq!(code, "CONFLICT", "a cancelled session is not held");
    // Another group, empty, whose roster the empty attendance matches: only the session id is
    // wrong, and the session stays the first group's.
    let elsewhere = form_group(&app, &clinician, 12, "facilitator-sam").await;
    let (code, _) = app
        .graphql_error(
            Some(&facilitator),
            "mutation($g: ID!, $s: ID, $at: DateTime!) { recordSession(groupId: $g, sessionId: $s, topic: \"Taken over\", heldAt: $at, attendance: []) { id } }",
            json!({ "g": elsewhere["id"], "s": planned["id"], "at": rfc3339(now) }),
        )
        .await;
    assert_eq!(
        code, "NOT_FOUND",
        "another group's session is not this group's to record"
    );
    let owner = app
        .graphql(
            &clinician,
            "query($g: ID!) { group(id: $g) { sessions { id topic } } }",
            json!({ "g": group["id"] }),
        )
        .await;
    assert!(
        owner["group"]["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == planned["id"] && s["topic"] == "Relapse prevention"),
        "{owner}"
    );

    let close =
        "mutation($g: ID!) { closeGroup(groupId: $g, reason: \"programme ended\") { id closed } }";
    let (code, _) = app
        .graphql_error(Some(&facilitator), close, json!({ "g": group["id"] }))
        .await;
    assert_eq!(code, "FORBIDDEN");
    let closed = app
        .graphql(&clinician, close, json!({ "g": group["id"] }))
        .await;
    assert_eq!(
        closed["closeGroup"],
        json!({ "id": group["id"], "closed": true })
    );
    let (code, _) = app
        .graphql_error(
            Some(&facilitator),
            plan,
            json!({ "g": group["id"], "at": rfc3339(now + time::Duration::days(3)) }),
        )
        .await;
    assert_eq!(code, "CONFLICT", "a closed group plans nothing");
    let newcomer = admitted(&app, &clinician, "Sam Newcomer").await;
    let (code, _) = app
        .graphql_error(
            Some(&clinician),
            "mutation($g: ID!, $m: ID!) { joinGroup(groupId: $g, memberId: $m) { id } }",
            json!({ "g": group["id"], "m": newcomer["id"] }),
        )
        .await;
    assert_eq!(code, "CONFLICT", "a closed group takes no one");

    let sessions = app
        .graphql(
            &clinician,
            "query($g: ID!) { group(id: $g) { sessions { id status } } }",
            json!({ "g": group["id"] }),
        )
        .await;
    let mut statuses: Vec<&str> = sessions["group"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, ["cancelled", "held"]);
    app.stop().await.unwrap();
}

/// Late data entry: a referral, intake and admission of last week, and a join before the
/// session being recorded, are entered with the times they happened.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn what_happened_earlier_is_entered_with_its_own_time(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let now = time::OffsetDateTime::now_utc();
    let ago = |d: time::Duration| rfc3339(now - d);
    let referred = app
        .graphql(
            &clinician,
            "mutation($at: DateTime) { referMember(name: \"Robin Example\", source: SELF, at: $at) { id } }",
            json!({ "at": ago(time::Duration::days(7)) }),
        )
        .await;
    let id = referred["referMember"]["id"].clone();
    for (mutation, at) in [
        (
            "completeIntake(memberId: $id, recommendedLevel: OUTPATIENT, at: $at)",
            ago(time::Duration::days(6)),
        ),
        (
            "admitMember(memberId: $id, levelOfCare: OUTPATIENT, at: $at)",
            ago(time::Duration::days(5)),
        ),
    ] {
        app.graphql(
            &clinician,
            &format!("mutation($id: ID!, $at: DateTime) {{ {mutation} {{ stage }} }}"),
            json!({ "id": id, "at": at }),
        )
        .await;
    }
    // A group that met before it was entered here: formed in the past, not in the future, and
    // nothing in it dated before its formation.
    let form = "mutation($at: DateTime) { formGroup(name: \"Early risers\", model: SUPPORT, formedAt: $at) { id } }";
    let (code, message) = app
        .graphql_error(
            Some(&clinician),
            form,
            json!({ "at": rfc3339(time::OffsetDateTime::now_utc() + time::Duration::days(1)) }),
        )
        .await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("BAD_USER_INPUT", "`formedAt` must not be in the future")
    );
    let late = app
        .graphql(
            &clinician,
            form,
            json!({ "at": ago(time::Duration::hours(1)) }),
        )
        .await;
    let join = "mutation($g: ID!, $m: ID!, $at: DateTime) { joinGroup(groupId: $g, memberId: $m, at: $at) { id members { id } } }";
    let (code, message) = app
        .graphql_error(
            Some(&clinician),
            join,
            json!({ "g": late["formGroup"]["id"], "m": id, "at": ago(time::Duration::days(1)) }),
        )
        .await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "CONFLICT",
            "a join cannot be dated before the group was formed"
        )
    );
    let group = app
        .graphql(
            &clinician,
            form,
            json!({ "at": ago(time::Duration::days(7)) }),
        )
        .await["formGroup"]
        .clone();
    let (code, message) = app
        .graphql_error(
            Some(&clinician),
            join,
            json!({ "g": group["id"], "m": id, "at": ago(time::Duration::days(6)) }),
        )
        .await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "BAD_USER_INPUT",
            "`at` must not be before the member's admission"
        )
    );
    app.graphql(
        &clinician,
        join,
        json!({ "g": group["id"], "m": id, "at": ago(time::Duration::hours(2)) }),
    )
    .await;
    let held = app
        .graphql(
            &clinician,
            "mutation($g: ID!, $at: DateTime!, $m: ID!) { recordSession(groupId: $g, topic: \"Coping\", heldAt: $at, attendance: [{ memberId: $m, status: PRESENT }]) { attendance { status } } }",
            json!({ "g": group["id"], "at": ago(time::Duration::hours(1)), "m": id }),
        )
        .await;
    assert_eq!(
        held["recordSession"]["attendance"],
        json!([{ "status": "PRESENT" }])
    );
    app.stop().await.unwrap();
}

/// Each clinic's own rules (CLINIC_AT_RISK_THRESHOLDS, CLINIC_FOLLOW_UP_DAYS): two sessions a
/// week are enough in north, whose threshold is 2, and not in south (the default 3); a
/// completed discharge plans the follow-ups the operator set.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn each_clinics_at_risk_threshold_and_follow_up_days_apply(pool: PgPool) {
    let app = clinic_tests::spawn_app_with_env(
        pool,
        &[
            ("CLINIC_AT_RISK_THRESHOLDS", "north=2"),
            ("CLINIC_FOLLOW_UP_DAYS", "14,60"),
        ],
    )
    .await;
    let mut members = Vec::new();
    for clinic in ["north", "south"] {
        let clinician = app.token("dr-lee", Role::Clinician, clinic);
        let member = admitted(&app, &clinician, "Robin Example").await;
        let group = form_group(&app, &clinician, 12, "facilitator-sam").await;
        app.graphql(
            &clinician,
            "mutation($g: ID!, $m: ID!) { joinGroup(groupId: $g, memberId: $m) { id } }",
            json!({ "g": group["id"], "m": member["id"] }),
        )
        .await;
        for _ in 0..2 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            app.graphql(
                &clinician,
                "mutation($g: ID!, $at: DateTime!, $m: ID!) { recordSession(groupId: $g, topic: \"Coping\", heldAt: $at, attendance: [{ memberId: $m, status: PRESENT }]) { id } }",
                json!({ "g": group["id"], "at": rfc3339(time::OffsetDateTime::now_utc()), "m": member["id"] }),
            )
            .await;
        }
        let read = app
            .graphql(
                &clinician,
                "query($id: ID!) { member(id: $id) { atRisk sessionsAttendedLast7Days } members(atRisk: true, first: 10) { totalCount } }",
                json!({ "id": member["id"] }),
            )
            .await;
        members.push((clinician, member["id"].clone(), read));
    }
    let (north, south) = (&members[0], &members[1]);
    assert_eq!(
        north.2,
        json!({ "member": { "atRisk": false, "sessionsAttendedLast7Days": 2 }, "members": { "totalCount": 0 } }),
        "north's threshold is 2"
    );
    assert_eq!(
        south.2,
        json!({ "member": { "atRisk": true, "sessionsAttendedLast7Days": 2 }, "members": { "totalCount": 1 } }),
        "south keeps the default 3"
    );
    let discharged = app
        .graphql(
            &north.0,
            "mutation($id: ID!) { dischargeMember(memberId: $id, reason: COMPLETED) { followUps { dayOffset } } }",
            json!({ "id": north.1 }),
        )
        .await;
    assert_eq!(
        discharged["dischargeMember"]["followUps"],
        json!([{ "dayOffset": 14 }, { "dayOffset": 60 }])
    );
    app.stop().await.unwrap();
}

/// A time outside the calendar (here year 10000 once in UTC, or before year 1) is refused
/// before anything is stored: stored, it stopped the members projection for good (its
/// timestamp conversion panics on every replay), and a year-0 time could never be shown.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn times_outside_the_calendar_are_refused_and_nothing_is_stored(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let member = admitted(&app, &clinician, "Casey Example").await;
    let id = member["id"].clone();
    let stored = app.events_stored().await;

    let schedule = "mutation($id: ID!, $due: DateTime!) { scheduleCheckIn(memberId: $id, dueAt: $due) { id } }";
    for (due, argument) in [
        ("9999-12-31T23:00:00-05:00", "`dueAt`"),
        ("0000-01-01T00:00:00+01:00", "`dueAt`"),
    ] {
        let (code, message) = app
            .graphql_error(Some(&clinician), schedule, json!({ "id": id, "due": due }))
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{due}: {message}");
        assert!(message.contains(argument), "{message}");
    }
    let (code, message) = app
        .graphql_error(
            Some(&clinician),
            "query($id: ID!) { memberAsOf(id: $id, at: \"9999-12-31T23:00:00-05:00\") { stage } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "{message}");
    assert_eq!(app.events_stored().await, stored, "nothing stored");

    // The read models go on: a check-in in range is scheduled and read back at once.
    let scheduled = app
        .graphql(
            &clinician,
            "mutation($id: ID!, $due: DateTime!) { scheduleCheckIn(memberId: $id, dueAt: $due) { checkIns { dueAt } } }",
            json!({ "id": id, "due": "2199-12-31T22:00:00-01:00" }),
        )
        .await;
    assert_eq!(
        scheduled["scheduleCheckIn"]["checkIns"][0]["dueAt"], "2199-12-31T23:00:00Z",
        "kept in UTC"
    );
}

/// Joining a group with an id that names no member of the caller's clinic (a mistyped id, the
/// group's own id, another clinic's member) is NOT_FOUND, as for any member command; nothing
/// is stored.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn joining_a_group_with_an_unknown_member_is_not_found(pool: PgPool) {
    let app = spawn_app(pool).await;
    let clinician = app.token("dr-lee", Role::Clinician, "north");
    let group = form_group(&app, &clinician, 12, "facilitator-sam").await;
    let elsewhere = admitted(
        &app,
        &app.token("dr-sol", Role::Clinician, "south"),
        "Sol South",
    )
    .await;
    let stored = app.events_stored().await;
    let join = "mutation($g: ID!, $m: ID!) { joinGroup(groupId: $g, memberId: $m) { id } }";
    for member in [
        json!(uuid::Uuid::new_v4().to_string()),
        group["id"].clone(),
        elsewhere["id"].clone(),
    ] {
        let (code, message) = app
            .graphql_error(
                Some(&clinician),
                join,
                json!({ "g": group["id"], "m": member }),
            )
            .await;
        assert_eq!(code, "NOT_FOUND", "{member}: {message}");
    }
    assert_eq!(app.events_stored().await, stored);
}
