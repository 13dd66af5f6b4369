//! The `clinic` binary as an operator runs it, against a real PostgreSQL.
#![allow(clippy::unwrap_used, missing_docs)]

use std::process::{Command, Output};

use clinic_domain::member::{MemberEvent, ReferMember};
use clinic_domain::values::{Email, PersonName, ReferralSource};
use clinic_domain::{MemberDecider, MemberId};
use clinic_graphql::auth::{Role, TokenKeys};
use clinic_infra::clinic::ClinicId;
use clinic_infra::codec;
use clinic_infra::commands::{CommandContext, CommandHandler};
use clinic_infra::event_store::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
use clinic_infra::keyring::{Keyring, MasterKey};
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
    // Where sqlx::test found the server: the environment, or the checkout's `.env`.
    let base = dotenvy::var("DATABASE_URL").unwrap();
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
    // A mistyped clinic is no intact one, and no tampered one either: the check did not run.
    let typo = clinic(&["verify", "--clinic", "suoth"], &url);
    assert_eq!(typo.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&typo.stderr).contains("`suoth` has no streams"));
    let server = url.rsplit_once('/').unwrap().0;
    let missing = clinic(&["verify"], &format!("{server}/clinic_no_such_database"));
    assert_eq!(missing.status.code(), Some(2));
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_database_name_postgresql_shortens_migrates_every_time(pool: PgPool) {
    // PostgreSQL keeps the first 63 bytes of a longer name, when creating the database and when
    // connecting to it: the second start must find the database the first one created.
    let base = url_of(&pool).await;
    let server = base.rsplit_once('/').unwrap().0;
    let name = format!("clinic_cli_{}_{}", Uuid::new_v4().simple(), "x".repeat(30));
    assert!(name.len() > 63);
    let url = format!("{server}/{name}");
    for run in ["first", "second"] {
        let output = clinic(&["migrate"], &url);
        assert!(output.status.success(), "{run}: {output:?}");
    }
    let stored = &name[..63];
    let found: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(stored)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(found, 1);
    sqlx::query(&format!("DROP DATABASE \"{stored}\" WITH (FORCE)"))
        .execute(&pool)
        .await
        .unwrap();
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
    // Again, at the default log level: nothing to do, and nothing that reads like a problem
    // (PostgreSQL's notices that an existing table was skipped).
    let again = Command::new(env!("CARGO_BIN_EXE_clinic"))
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(again.status.success(), "{again:?}");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!stderr.contains("skipping"), "{stderr}");
    // The notice is sent, and shown when asked for.
    let asked = Command::new(env!("CARGO_BIN_EXE_clinic"))
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&asked.stderr);
    assert!(stderr.contains("skipping"), "{stderr}");
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

    // The subject is signed as rosters and CLINIC_STAFF_EMAILS will match it: trimmed, and
    // never with a control character (it becomes every event's actor and every log line's).
    let token_for = |sub: &str| {
        let args = [
            "token",
            "--sub",
            sub,
            "--role",
            "clinician",
            "--clinic",
            "north",
        ];
        clinic(&args, "postgres://unused@127.0.0.1:1/unused")
    };
    let spaced = token_for(" dr-lee ");
    assert!(spaced.status.success(), "{spaced:?}");
    let staff = TokenKeys::new(&SecretString::from(SECRET.to_owned()))
        .verify(stdout(&spaced).trim())
        .unwrap();
    assert_eq!(staff.sub, "dr-lee");
    let control = token_for("dr-lee\nrole: admin");
    assert!(!control.status.success());
    assert!(String::from_utf8_lossy(&control.stderr).contains("control characters"));
    assert!(stdout(&control).is_empty(), "no token printed");
}

/// Operator commands run beside a service, perhaps of another release: they neither create a
/// database (a mistyped URL would find nothing in a new one, and say so as if it were right)
/// nor migrate one (that would move a running service's schema under it).
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn operator_commands_neither_create_nor_migrate_a_database(pool: PgPool) {
    let base = url_of(&pool).await;
    let server = base.rsplit_once('/').unwrap().0;
    let name = format!("clinic_cli_{}", &Uuid::new_v4().simple().to_string()[..12]);
    let url = format!("{server}/{name}");
    let member = Uuid::new_v4().to_string();
    let commands: [&[&str]; 4] = [
        &["erase", "--member", &member, "--reason", "member request"],
        &["disclosures", "--member", &member],
        &["rotate-master-key"],
        &["rebuild"],
    ];
    let new_key = [("CLINIC_NEW_MASTER_KEY", NEW_MASTER_KEY)];
    let exists = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_database WHERE datname = $1")
            .bind(&name)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    for args in commands {
        let output = clinic_with_key(args, &url, &new_key);
        assert!(!output.status.success(), "{args:?}");
    }
    assert_eq!(exists().await, 0, "no database created");

    // An empty database is not migrated either: the command says what to do.
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&pool)
        .await
        .unwrap();
    for args in commands {
        let output = clinic_with_key(args, &url, &new_key);
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("run `clinic migrate`"),
            "{args:?}: {stderr}"
        );
    }
    let empty = clinic_infra::db::connect(&url, 1).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&empty)
    .await
    .unwrap();
    empty.close().await;
    assert_eq!(tables, 0, "nothing migrated");
    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&pool)
        .await
        .unwrap();

    // A database another release migrated is left to that release's binary: one newer than
    // this build, or one whose migration's text differs from this build's.
    let rebuild = ["rebuild"];
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99991231000001, 'from a newer release', true, '\\x00', 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let newer = clinic_with_key(&rebuild, &base, &[]);
    assert!(!newer.status.success());
    assert!(String::from_utf8_lossy(&newer.stderr).contains("that release's binary"));
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 99991231000001")
        .execute(&pool)
        .await
        .unwrap();
    assert!(clinic_with_key(&rebuild, &base, &[]).status.success());
    sqlx::query(
        "UPDATE _sqlx_migrations SET checksum = '\\x00' \
         WHERE version = (SELECT min(version) FROM _sqlx_migrations)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let changed = clinic_with_key(&rebuild, &base, &[]);
    assert!(!changed.status.success());
    assert!(String::from_utf8_lossy(&changed.stderr).contains("its text differs"));
}

#[test]
fn an_invalid_log_filter_is_said_not_silently_replaced() {
    let output = Command::new(env!("CARGO_BIN_EXE_clinic"))
        .args([
            "token", "--sub", "a", "--role", "admin", "--clinic", "north",
        ])
        .env("CLINIC_JWT_SECRET", SECRET)
        .env("RUST_LOG", "clinic=loud")
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("RUST_LOG is not a valid filter"),
        "{stderr}"
    );
}

#[test]
fn out_of_range_arguments_are_clear_errors_not_panics() {
    for (args, named) in [
        (
            &[
                "token",
                "--sub",
                "a",
                "--role",
                "admin",
                "--clinic",
                "north",
                "--ttl",
                "9223372036854775807",
            ][..],
            "--ttl",
        ),
        (
            &[
                "token", "--sub", " ", "--role", "admin", "--clinic", "north",
            ][..],
            "--sub",
        ),
        (&["seed-demo", "--days", "4294967295"][..], "--days"),
        (
            &[
                "disclosures",
                "--member",
                "00000000-0000-0000-0000-000000000001",
                "--since-days",
                "4294967295",
            ][..],
            "--since-days",
        ),
    ] {
        let output = clinic(args, "postgres://postgres@127.0.0.1:1/unused");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
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

    // A value that is not UTF-8 is named too, not taken for unset (the default database).
    let output = Command::new(env!("CARGO_BIN_EXE_clinic"))
        .args(["migrate"])
        .env(
            "DATABASE_URL",
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"postgres://\xff"),
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DATABASE_URL: UTF-8 text"), "{stderr}");

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

const MASTER_KEY: &str = "Y2xpLXRlc3RzLWN1cnJlbnQtbWFzdGVyLWtleS0zMiE=";
const NEW_MASTER_KEY: &str = "Y2xpLXRlc3RzLXJvdGF0ZWQtbWFzdGVyLWtleS0zMiE=";

fn clinic_with_key(args: &[&str], database_url: &str, envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clinic"));
    command
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("CLINIC_JWT_SECRET", SECRET)
        .env("CLINIC_MASTER_KEY", MASTER_KEY)
        .env("RUST_LOG", "warn");
    for (name, value) in envs {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn keyring(pool: &PgPool, key: &str) -> Keyring {
    Keyring::new(pool.clone(), MasterKey::from_base64(key).unwrap())
}

fn referral(member: MemberId, name: &str) -> ReferMember {
    ReferMember {
        member,
        name: PersonName::parse(name).unwrap(),
        email: Some(Email::parse("someone@example.org").unwrap()),
        phone: None,
        source: ReferralSource::SelfReferral,
        primary_substance: None,
        at: time::OffsetDateTime::now_utc(),
    }
}

/// A member referred (never admitted) in clinic `north`, sealed under `key`.
async fn referred(pool: &PgPool, key: &str, name: &str) -> MemberId {
    let member = MemberId::new(Uuid::new_v4());
    let handler: CommandHandler<MemberDecider> =
        CommandHandler::new(EventStore::new(pool.clone()), keyring(pool, key));
    let command = referral(member, name);
    handler
        .execute(
            &CommandContext {
                clinic: ClinicId::parse("north").unwrap(),
                actor: "cli-test".into(),
                correlation_id: Uuid::new_v4(),
                idempotency_key: None,
                request_digest: None,
            },
            &StreamId::of("member", member.as_uuid()),
            None,
            command.into(),
        )
        .await
        .unwrap();
    member
}

async fn name_of(pool: &PgPool, key: &str, member: MemberId) -> String {
    let store = EventStore::new(pool.clone());
    let rows = store
        .read_stream(
            &ClinicId::parse("north").unwrap(),
            &StreamId::of("member", member.as_uuid()),
            1,
        )
        .await
        .unwrap();
    let events: Vec<MemberEvent> = codec::decode_all(&keyring(pool, key), &rows).await.unwrap();
    match &events[0] {
        MemberEvent::MemberReferred(referred) => referred.name.clone(),
        other => panic!("{other:?}"),
    }
}

async fn log_fingerprint(pool: &PgPool) -> String {
    sqlx::query_scalar("SELECT md5(string_agg(data::text || encode(hash, 'hex'), ',' ORDER BY position)) FROM events")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn rotate_master_key_rewraps_every_data_key_without_touching_the_log(pool: PgPool) {
    let url = url_of(&pool).await;
    // A database without member keys (the wrong one, or none yet) rotates nothing: a failure,
    // so that the old key is not retired on the strength of it.
    let empty = clinic_with_key(
        &["rotate-master-key"],
        &url,
        &[("CLINIC_NEW_MASTER_KEY", NEW_MASTER_KEY)],
    );
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("nothing was rotated"));
    let ann = referred(&pool, MASTER_KEY, "Ann Archer").await;
    referred(&pool, MASTER_KEY, "Bo Baker").await;
    let before = log_fingerprint(&pool).await;

    let output = clinic_with_key(&["rotate-master-key"], &url, &[]);
    assert!(!output.status.success(), "needs the new key");
    assert!(String::from_utf8_lossy(&output.stderr).contains("CLINIC_NEW_MASTER_KEY"));

    let new = [("CLINIC_NEW_MASTER_KEY", NEW_MASTER_KEY)];
    let output = clinic_with_key(&["rotate-master-key"], &url, &new);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout(&output).contains("re-wrapped 2 data keys"),
        "{}",
        stdout(&output)
    );
    assert_eq!(log_fingerprint(&pool).await, before, "events untouched");
    assert_eq!(name_of(&pool, NEW_MASTER_KEY, ann).await, "Ann Archer");
    // The row versions wrapped under the old key were vacuumed away at once.
    let vacuumed: i64 = sqlx::query_scalar(
        "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'member_keys'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(vacuumed >= 1, "member_keys not vacuumed");
    let stale = keyring(&pool, MASTER_KEY).check_master_key().await;
    assert!(stale.is_err(), "the old key no longer opens the database");
    // A process still running with the old key cannot add a key wrapped by it.
    let handler: CommandHandler<MemberDecider> =
        CommandHandler::new(EventStore::new(pool.clone()), keyring(&pool, MASTER_KEY));
    let refused = handler
        .execute(
            &CommandContext {
                clinic: ClinicId::parse("north").unwrap(),
                actor: "cli-test".into(),
                correlation_id: Uuid::new_v4(),
                idempotency_key: None,
                request_digest: None,
            },
            &StreamId::of("member", Uuid::new_v4()),
            None,
            referral(MemberId::new(Uuid::new_v4()), "Stale Writer").into(),
        )
        .await;
    assert!(refused.is_err(), "no key under a retired master key");

    // Run again (e.g. after an interruption): nothing left to do.
    let output = clinic_with_key(
        &["rotate-master-key"],
        &url,
        &[
            ("CLINIC_MASTER_KEY", MASTER_KEY),
            ("CLINIC_NEW_MASTER_KEY", NEW_MASTER_KEY),
        ],
    );
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout(&output).contains("re-wrapped 0 data keys (2 were already"),
        "{}",
        stdout(&output)
    );
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn erase_shreds_a_member_from_the_cli_and_refuses_a_wrong_master_key(pool: PgPool) {
    let url = url_of(&pool).await;
    let member = referred(&pool, MASTER_KEY, "Cy Carver").await;
    let id = member.to_string();

    let output = clinic_with_key(
        &["erase", "--member", &id, "--reason", "member request"],
        &url,
        &[("CLINIC_MASTER_KEY", NEW_MASTER_KEY)],
    );
    assert!(
        !output.status.success(),
        "a key that does not wrap the data keys is refused"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("CLINIC_MASTER_KEY"));
    let output = clinic_with_key(
        &["erase", "--member", &id, "--reason", "member request"],
        &url,
        &[("CLINIC_MASTER_KEY", "dG9vIHNob3J0")],
    );
    assert!(
        !output.status.success(),
        "a malformed key is a start-up error"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("CLINIC_MASTER_KEY"));

    let output = clinic_with_key(
        &["erase", "--member", &id, "--reason", "member request"],
        &url,
        &[],
    );
    assert!(output.status.success(), "{output:?}");
    assert!(stdout(&output).contains("erased"), "{}", stdout(&output));
    assert_eq!(name_of(&pool, MASTER_KEY, member).await, "(erased)");
    let again = clinic_with_key(
        &["erase", "--member", &id, "--reason", "member request"],
        &url,
        &[],
    );
    assert!(again.status.success(), "{again:?}");
    assert!(stdout(&again).contains("already erased"));
    let verify = clinic(&["verify"], &url);
    assert!(verify.status.success(), "{}", stdout(&verify));

    let unknown = clinic_with_key(
        &[
            "erase",
            "--member",
            &Uuid::new_v4().to_string(),
            "--reason",
            "x",
        ],
        &url,
        &[],
    );
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no member"));

    let csv = clinic_with_key(&["disclosures", "--member", &id], &url, &[]);
    assert!(csv.status.success(), "{csv:?}");
    assert!(stdout(&csv).starts_with("disclosed_at,recipient,purpose"));
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn only_serve_dev_falls_back_to_the_development_key_file(pool: PgPool) {
    let url = url_of(&pool).await;
    let dir = std::env::temp_dir().join(format!("clinic-dev-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join(".clinic-dev")).unwrap();
    std::fs::write(dir.join(".clinic-dev/master-key"), MASTER_KEY).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_clinic"))
        .args(["disclosures", "--member", &Uuid::new_v4().to_string()])
        .current_dir(&dir)
        .env("DATABASE_URL", &url)
        .env_remove("CLINIC_MASTER_KEY")
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("CLINIC_MASTER_KEY is not set"));
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn seed_demo_plans_the_clinics_own_follow_up_days(pool: PgPool) {
    let url = url_of(&pool).await;
    let seed = |clinic: &str| {
        let output = clinic_with_key(
            &[
                "seed-demo",
                "--members",
                "60",
                "--days",
                "150",
                "--clinic",
                clinic,
            ],
            &url,
            &[("CLINIC_FOLLOW_UP_DAYS", "14,60")],
        );
        assert!(output.status.success(), "{output:?}");
    };
    seed("north");
    // Seeding a clinic that has records is refused: generated people could never be taken out
    // of its log again.
    let again = clinic_with_key(
        &["seed-demo", "--members", "5", "--clinic", "north"],
        &url,
        &[],
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already has"));
    let offsets: Vec<i32> = sqlx::query_scalar(
        "SELECT DISTINCT (f ->> 'day_offset')::int FROM events, \
         jsonb_array_elements(data -> 'follow_ups') AS f \
         WHERE type = 'AftercareStarted' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(offsets, [14, 60]);

    // A second clinic seeded with the same options is a clinic of its own, with its own ids
    // (the same ids would be refused as events already stored).
    seed("south");
    let per_clinic: Vec<(String, i64)> = sqlx::query_as(
        "SELECT clinic, count(*) FROM streams WHERE category = 'member' GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(per_clinic, [("north".into(), 60), ("south".into(), 60)]);
}
