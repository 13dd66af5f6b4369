//! Append throughput of the event store beside plain INSERTs into an equivalent table, in the
//! same run on the same PostgreSQL (README "Benchmarks"). Run: `cargo bench -p clinic-infra --bench append`.
//!
//! Uses the database `clinic_bench` on the server of `DATABASE_URL` (created and migrated if
//! missing; its tables are emptied first). `BENCH_SECONDS` sets each measurement's length.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use clinic_domain::member::{GoalSet, MemberEvent};
use clinic_domain::GoalId;
use clinic_infra::clinic::ClinicId;
use clinic_infra::codec;
use clinic_infra::event_store::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
use clinic_infra::keyring::{Keyring, MasterKey};
use serde_json::json;
use sqlx::types::Json;
use sqlx::PgPool;
use uuid::Uuid;

fn event() -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "SessionHeld".into(),
        schema_version: 2,
        data: json!({
            "session_id": Uuid::new_v4(),
            "held_at": "2026-11-25T10:00:00Z",
            "topic": "Coping with cravings",
            "duration_minutes": 90,
            "attendance": [{"member_id": Uuid::new_v4(), "status": "present"}],
        }),
        metadata: Metadata {
            actor: "bench".into(),
            correlation_id: Uuid::new_v4(),
            causation_id: None,
            request: None,
        },
    }
}

/// Plain INSERT of the same rows, no event-store logic: the baseline.
async fn plain_insert(pool: &PgPool, stream: &str, events: &[NewEvent]) {
    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let data: Vec<Json<&serde_json::Value>> = events.iter().map(|e| Json(&e.data)).collect();
    let metadata: Vec<Json<&Metadata>> = events.iter().map(|e| Json(&e.metadata)).collect();
    sqlx::query(
        "INSERT INTO bench_plain_events (clinic, stream_id, version, event_id, type, schema_version, data, metadata)
         SELECT 'bench', $1, 1, id, t, 2, d, m FROM unnest($2::uuid[], $3::text[], $4::jsonb[], $5::jsonb[]) AS u(id, t, d, m)",
    )
    .bind(stream)
    .bind(&ids)
    .bind(&types)
    .bind(&data)
    .bind(&metadata)
    .execute(pool)
    .await
    .unwrap();
}

/// A member event with a personal field (a goal in the member's words), as rows the store
/// appends: sealed under the member's key as the service writes it, or in clear.
async fn goal_events(
    keyring: Option<&Keyring>,
    clinic: &ClinicId,
    stream: &StreamId,
    count: usize,
) -> Vec<NewEvent> {
    let mut rows = Vec::with_capacity(count);
    for _ in 0..count {
        let event: MemberEvent = GoalSet {
            goal_id: GoalId::new(Uuid::new_v4()),
            text: "Call my sponsor every evening before dinner".into(),
            set_at: time::OffsetDateTime::now_utc(),
        }
        .into();
        let metadata = Metadata {
            actor: "bench".into(),
            correlation_id: Uuid::new_v4(),
            causation_id: None,
            request: None,
        };
        rows.push(match keyring {
            Some(keyring) => {
                codec::encode(keyring, clinic, stream, &event, Uuid::new_v4(), metadata)
                    .await
                    .unwrap()
            }
            None => codec::encode_unsealed(&event, Uuid::new_v4(), metadata),
        });
    }
    rows
}

#[derive(Clone, Copy)]
enum Target {
    /// The baseline: plain INSERTs.
    Plain,
    /// Appends of events without personal fields.
    EventStore,
    /// Appends of member events with a personal field, in clear.
    Unsealed,
    /// The same, sealed under the member's key.
    Sealed,
}

/// Runs `writers` tasks, each appending batches of `batch` events to its own stream, for
/// `seconds`; returns events per second.
async fn measure(
    pool: &PgPool,
    keyring: &Keyring,
    target: Target,
    writers: usize,
    batch: usize,
    seconds: f64,
) -> f64 {
    // One store shared by every writer, as in `clinic serve` (a store per writer would also
    // send a NOTIFY stream per writer).
    let store = EventStore::new(pool.clone());
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let pool = pool.clone();
            let keyring = keyring.clone();
            let store = store.clone();
            tokio::spawn(async move {
                let clinic = ClinicId::parse("bench").unwrap();
                let stream = StreamId::of("member", Uuid::new_v4());
                let mut written = 0usize;
                while Instant::now() < deadline {
                    let events: Vec<NewEvent> = match target {
                        Target::Plain | Target::EventStore => (0..batch).map(|_| event()).collect(),
                        Target::Unsealed => goal_events(None, &clinic, &stream, batch).await,
                        Target::Sealed => {
                            goal_events(Some(&keyring), &clinic, &stream, batch).await
                        }
                    };
                    match target {
                        Target::Plain => plain_insert(&pool, stream.as_str(), &events).await,
                        Target::EventStore | Target::Unsealed | Target::Sealed => {
                            store
                                .append(&clinic, &stream, ExpectedVersion::Any, &events)
                                .await
                                .unwrap();
                        }
                    }
                    written += batch;
                }
                written
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    // The environment, else the checkout's `.env` (as the tests).
    let base = dotenvy::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let server = base.rsplit_once('/').unwrap().0;
    let url = format!("{server}/clinic_bench");
    let pool = clinic_infra::db::connect_and_migrate(&url, 12)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_plain_events (
            position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, clinic text NOT NULL,
            stream_id text NOT NULL, version bigint NOT NULL, event_id uuid NOT NULL UNIQUE,
            type text NOT NULL, schema_version integer NOT NULL, data jsonb NOT NULL,
            metadata jsonb NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("TRUNCATE bench_plain_events")
        .execute(&pool)
        .await
        .unwrap();
    // The append-only triggers refuse TRUNCATE; the benchmark's own database is emptied behind
    // them. (member_keys too: each run seals under a fresh master key.)
    for statement in [
        "ALTER TABLE events DISABLE TRIGGER events_no_truncate",
        "ALTER TABLE member_keys DISABLE TRIGGER member_keys_no_truncate",
        "TRUNCATE events, streams, member_keys",
        "ALTER TABLE events ENABLE TRIGGER events_no_truncate",
        "ALTER TABLE member_keys ENABLE TRIGGER member_keys_no_truncate",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }

    println!("append benchmark, {seconds} s per measurement, database clinic_bench");
    println!(
        "{:<34} {:>14} {:>14} {:>8}",
        "case", "plain ev/s", "store ev/s", "ratio"
    );
    let keyring = Keyring::new(pool.clone(), MasterKey::generate().0);
    for (name, writers, batch) in CASES {
        if !selected(name) {
            continue;
        }
        let (plain, store) = interleaved(
            &pool,
            &keyring,
            Target::Plain,
            Target::EventStore,
            writers,
            batch,
            seconds,
        )
        .await;
        println!(
            "{name:<34} {plain:>14.0} {store:>14.0} {:>7.2}x",
            store / plain
        );
    }

    println!();
    println!("sealing personal fields: member events with a personal field, in clear and sealed");
    println!(
        "{:<34} {:>14} {:>14} {:>8}",
        "case", "clear ev/s", "sealed ev/s", "ratio"
    );
    for (name, writers, batch) in CASES {
        if !selected(name) {
            continue;
        }
        let (clear, sealed) = interleaved(
            &pool,
            &keyring,
            Target::Unsealed,
            Target::Sealed,
            writers,
            batch,
            seconds,
        )
        .await;
        println!(
            "{name:<34} {clear:>14.0} {sealed:>14.0} {:>7.2}x",
            sealed / clear
        );
    }
}

/// `BENCH_CASE=<text>` measures only the cases whose name contains it (both sections).
fn selected(case: &str) -> bool {
    std::env::var("BENCH_CASE").map_or(true, |only| case.contains(&only))
}

const CASES: [(&str, usize, usize); 4] = [
    ("1 writer, single-event appends", 1, 1),
    ("8 writers, single-event appends", 8, 1),
    ("1 writer, batches of 100", 1, 100),
    ("8 writers, batches of 100", 8, 100),
];

/// `a` and `b` measured twice each, interleaved so drift on a shared machine hits both alike;
/// the mean events per second of each.
async fn interleaved(
    pool: &PgPool,
    keyring: &Keyring,
    a: Target,
    b: Target,
    writers: usize,
    batch: usize,
    seconds: f64,
) -> (f64, f64) {
    let half = seconds / 2.0;
    let a1 = measure(pool, keyring, a, writers, batch, half).await;
    let b1 = measure(pool, keyring, b, writers, batch, half).await;
    let a2 = measure(pool, keyring, a, writers, batch, half).await;
    let b2 = measure(pool, keyring, b, writers, batch, half).await;
    ((a1 + a2) / 2.0, (b1 + b2) / 2.0)
}
