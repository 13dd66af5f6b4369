//! The `clinic` binary as an operator runs it, against a real PostgreSQL.
#![allow(clippy::unwrap_used, missing_docs)]

use std::process::{Command, Output};

use clinic_graphql::auth::{Role, TokenKeys};
use clinic_infra::clinic::ClinicId;
use clinic_infra::event_store::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
use secrecy::SecretString;
use sqlx::PgPool;
use uuid::Uuid;

const SECRET: &str = "cli-test-secret-0123456789";

/// The URL of the database `pool` is connected to (a fresh one per `sqlx::test`).
async fn url_of(pool: &PgPool) -> String {
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let base = std::env::var("DATABASE_URL").unwrap();
    let (server, _) = base.rsplit_once('/').unwrap();
    format!("{server}/{name}")
}

fn clinic(args: &[&str], database_url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clinic"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("CLINIC_JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn append_some(pool: &PgPool, clinic: &str) -> StreamId {
    let stream = StreamId::of("member", Uuid::new_v4());
    let events: Vec<NewEvent> = (0..3)
        .map(|n| NewEvent {
            event_id: Uuid::new_v4(),
            event_type: "GoalSet".into(),
            schema_version: 1,
            data: serde_json::json!({ "n": n }),
            metadata: Metadata {
                actor: "cli-test".into(),
                correlation_id: Uuid::new_v4(),
                causation_id: None,
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
async fn verify_passes_on_an_intact_log_and_fails_naming_a_tampered_stream(pool: PgPool) {
    let url = url_of(&pool).await;
    let tampered = append_some(&pool, "north").await;
    append_some(&pool, "south").await;

    let output = clinic(&["verify"], &url);
    assert!(output.status.success(), "{}", stdout(&output));
    assert!(stdout(&output).contains("streams checked: 2, events checked: 6"));

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE events SET metadata = '{\"actor\": \"someone-else\"}' WHERE stream_id = $1 AND version = 3")
        .bind(tampered.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE events ENABLE TRIGGER events_no_update_or_delete")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let output = clinic(&["verify"], &url);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains(&format!("BROKEN north/{tampered}")));
    let south_only = clinic(&["verify", "--clinic", "south"], &url);
    assert!(south_only.status.success(), "{}", stdout(&south_only));
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn migrate_creates_a_missing_database(pool: PgPool) {
    // A short random name (PostgreSQL truncates names beyond 63 bytes).
    let base = url_of(&pool).await;
    let server = base.rsplit_once('/').unwrap().0;
    let url = format!(
        "{server}/clinic_cli_{}",
        &Uuid::new_v4().simple().to_string()[..12]
    );
    let output = clinic(&["migrate"], &url);
    assert!(output.status.success(), "{output:?}");
    let name = url.rsplit_once('/').unwrap().1.to_owned();
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tables, 1);
    // Leave nothing behind.
    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&pool)
        .await
        .unwrap();
}

#[test]
fn token_prints_a_token_the_service_accepts() {
    let output = clinic(
        &[
            "token",
            "--sub",
            "dr-lee",
            "--role",
            "clinician",
            "--clinic",
            "north",
            "--ttl",
            "60",
        ],
        "postgres://unused@127.0.0.1:1/unused",
    );
    assert!(output.status.success(), "{output:?}");
    let token = stdout(&output);
    let staff = TokenKeys::new(&SecretString::from(SECRET.to_owned()))
        .verify(token.trim())
        .unwrap();
    assert_eq!(staff.sub, "dr-lee");
    assert_eq!(staff.role, Role::Clinician);
    assert_eq!(staff.clinic.as_str(), "north");
}

#[test]
fn bad_configuration_is_a_clear_error_naming_the_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_clinic"))
        .args(["migrate"])
        .env("CLINIC_SCHEDULER_TICK_MS", "often")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("CLINIC_SCHEDULER_TICK_MS"));

    let output = Command::new(env!("CARGO_BIN_EXE_clinic"))
        .args(["serve"])
        .env_remove("CLINIC_JWT_SECRET")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("CLINIC_JWT_SECRET"));

    let output = clinic(
        &["token", "--sub", "x", "--role", "root", "--clinic", "north"],
        "",
    );
    assert!(!output.status.success());
}
