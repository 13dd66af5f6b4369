//! No personal data in the service's own logs: a scenario with a distinctive name, email and
//! phone, every log line captured at DEBUG in the production JSON format, none of them found.

use std::io::Write;
use std::sync::{Arc, Mutex};

use clinic_graphql::auth::Role;
use clinic_tests::spawn_app;
use serde_json::json;
use sqlx::PgPool;

const NAME: &str = "Odalys Vantongeren";
const EMAIL: &str = "odalys.vantongeren@example.net";
const PHONE: &str = "+1 555 014 2299";

/// Every line the subscriber writes, kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn the_service_logs_no_personal_data(pool: PgPool) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("debug")
        .with_writer(captured.clone())
        .json()
        .with_current_span(true)
        .finish();
    // The only test that installs a global subscriber (the server's tasks log on other threads).
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let app = spawn_app(pool).await;
    let admin = app.token("admin-ada", Role::Admin, "north");
    let referred = app
        .graphql(
            &admin,
            "mutation($n: String!, $e: String!, $p: String!) { referMember(name: $n, email: $e, phone: $p, source: SELF) { id } }",
            json!({ "n": NAME, "e": EMAIL, "p": PHONE }),
        )
        .await;
    let id = referred["referMember"]["id"].clone();
    // Bad input that carries the name: refused, and not logged either.
    let (code, message) = app
        .graphql_error(
            Some(&admin),
            "mutation($n: String!) { referMember(name: $n, email: $n, source: SELF) { id } }",
            json!({ "n": NAME }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("email"), "{message}");
    app.graphql(
        &admin,
        "mutation($id: ID!, $s: String!) { recordConsent(memberId: $id, scope: FAMILY_CONTACT, kind: STANDARD, recipient: $s, purpose: \"care\", information: \"all\", expiresOn: \"the end of treatment\", signedBy: $s, signedAt: \"2026-01-01T00:00:00Z\", formVersion: \"v1\") { id } }",
        json!({ "id": id, "s": NAME }),
    )
    .await;
    app.graphql(
        &admin,
        "query($id: ID!) { member(id: $id) { name consents { signedBy } history(first: 10) { edges { node { data } } } } members(first: 10) { edges { node { name } } } }",
        json!({ "id": id }),
    )
    .await;
    let (code, _) = app
        .graphql_error(
            Some(&admin),
            "mutation($id: ID!, $r: String!) { recordDisclosure(memberId: $id, consentId: $id, recipient: $r, purpose: \"x\", description: \"x\", channel: \"x\") { id } }",
            json!({ "id": id, "r": NAME }),
        )
        .await;
    assert_eq!(code, "NOT_FOUND", "no such consent");
    app.graphql(
        &admin,
        "mutation($id: ID!) { eraseMember(memberId: $id, reason: \"member request\") }",
        json!({ "id": id }),
    )
    .await;
    // A request's log lines name its operation (to join them with its access-log entries).
    app.graphql(
        &admin,
        "query BoardForTheLogs { pipeline { stages { count } } }",
        json!({}),
    )
    .await;
    app.stop().await.unwrap();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains(r#""operation":"anonymous""#),
        "the capture saw the unnamed requests (the referrals among them): {} bytes",
        logs.len()
    );
    assert!(
        logs.contains(r#""operation":"BoardForTheLogs""#),
        "the request's span carries its operation"
    );
    assert!(
        logs.contains(r#""correlation_id":""#),
        "and the correlation id of its access-log entries"
    );
    let lower = logs.to_lowercase();
    for secret in [NAME, EMAIL, PHONE, "vantongeren", "odalys"] {
        assert!(
            !lower.contains(&secret.to_lowercase()),
            "{secret} was logged"
        );
    }
}
