//! Rebuild throughput of every projection from position 0, beside a plain-SQL baseline that
//! inserts the same number of rows in the same run (README "Benchmark: rebuild throughput"). Run:
//! `cargo bench -p clinic-infra --bench rebuild`.
//!
//! Uses the databases `clinic_bench_rebuild_sealed` (personal fields sealed, as the service
//! writes them) and `clinic_bench_rebuild_plain` (the same clinics in clear, to measure what
//! opening the fields costs) on the server of `DATABASE_URL` (created and migrated if
//! missing). Each log is generated once with the demo generator (clinics
//! `bench-1`, `bench-2`, ... until it holds `BENCH_EVENTS` events, default 1,000,000) and
//! reused by later runs. Peak RSS is measured in a fresh process (the generator's memory is not
//! counted): the bench re-runs itself after generating.
//!
//! `BENCH_BATCH` and `BENCH_READ_AHEAD` override the rebuild's page size and read-ahead;
//! `BENCH_ONLY=read|members|groups` times the log read alone, or one projection alone.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use clinic_infra::clinic::ClinicId;
use clinic_infra::demo::{self, DemoOptions};
use clinic_infra::event_store::EventStore;
use clinic_infra::keyring::{Keyring, MasterKey};
use clinic_infra::projections::{self, ProjectionName, RebuildOptions};
use sqlx::PgPool;
use uuid::Uuid;

/// The resident set now and at its peak, in KiB (Linux /proc/self/status).
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn event_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Appends demo clinics until the log holds `target` events. Returns whether it generated.
async fn ensure_log(pool: &PgPool, keyring: &Keyring, seal: bool, target: i64) -> bool {
    let mut count = event_count(pool).await;
    if count >= target {
        return false;
    }
    let store = EventStore::new(pool.clone());
    let mut n = 1;
    while count < target {
        let clinic = format!("bench-{n}");
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM streams WHERE clinic = $1)")
                .bind(&clinic)
                .fetch_one(pool)
                .await
                .unwrap();
        n += 1;
        if exists {
            continue;
        }
        let started = Instant::now();
        let mut options = DemoOptions::new(ClinicId::parse(&clinic).unwrap(), 12_000, 730);
        options.seed = n;
        options.writers = 6;
        options.seal = seal;
        let report = demo::seed_demo(&store, keyring, &options, time::OffsetDateTime::now_utc())
            .await
            .unwrap();
        count = event_count(pool).await;
        println!(
            "generated clinic {clinic}: {} members, {} groups, {} events in {:.0} s (log: {count} events)",
            report.members,
            report.groups,
            report.events,
            started.elapsed().as_secs_f64()
        );
    }
    true
}

/// The baseline: `rows` plain rows of about a read-model row's width, inserted with the same
/// technique the projections use (unnest arrays, one transaction of 5,000 rows each, no WAL
/// flush wait), into a table with a primary key and one secondary index.
async fn plain_inserts(pool: &PgPool, rows: i64) -> Duration {
    sqlx::query("DROP TABLE IF EXISTS bench_plain_rows")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE bench_plain_rows (
            clinic text NOT NULL, id uuid NOT NULL, member_id uuid NOT NULL,
            status text NOT NULL, at timestamptz NOT NULL, n bigint NOT NULL,
            PRIMARY KEY (clinic, id))",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("CREATE INDEX ON bench_plain_rows (clinic, member_id, at)")
        .execute(pool)
        .await
        .unwrap();
    let started = Instant::now();
    let now = time::OffsetDateTime::now_utc();
    let mut written = 0;
    while written < rows {
        let batch = (rows - written).min(5_000);
        let ids: Vec<Uuid> = (0..batch).map(|_| Uuid::new_v4()).collect();
        let members: Vec<Uuid> = (0..batch).map(|_| Uuid::new_v4()).collect();
        let clinics: Vec<&str> = vec!["bench"; ids.len()];
        let statuses: Vec<&str> = vec!["present"; ids.len()];
        let ats: Vec<time::OffsetDateTime> = vec![now; ids.len()];
        let ns: Vec<i64> = (written..written + batch).collect();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO bench_plain_rows SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[], $6::bigint[])",
        )
        .bind(&clinics)
        .bind(&ids)
        .bind(&members)
        .bind(&statuses)
        .bind(&ats)
        .bind(&ns)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        written += batch;
    }
    let elapsed = started.elapsed();
    sqlx::query("DROP TABLE bench_plain_rows")
        .execute(pool)
        .await
        .unwrap();
    elapsed
}

/// A whole rebuild of every projection over `pool`'s log, in events per second.
async fn rebuild_rate(pool: &PgPool, keyring: &Keyring, batch_size: u32) -> f64 {
    let report = projections::rebuild(
        pool,
        keyring,
        ProjectionName::ALL,
        &RebuildOptions {
            batch_size,
            ..RebuildOptions::default()
        },
        |_| {},
    )
    .await
    .unwrap();
    report.events as f64 / report.elapsed.as_secs_f64()
}

/// The benchmark databases' master key: fixed, because the generated logs are kept between
/// runs and must open in the next one.
const BENCH_MASTER_KEY: &str = "YmVuY2gtb25seS1tYXN0ZXIta2V5LTMyLWJ5dGVzISE=";

async fn read_model_rows(pool: &PgPool) -> i64 {
    let mut total = 0;
    for projection in ProjectionName::ALL {
        for table in projection.tables() {
            let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(pool)
                .await
                .unwrap();
            total += n;
        }
    }
    total
}

#[tokio::main]
async fn main() {
    let target: i64 = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    // The environment, else the checkout's `.env` (as the tests).
    let base = dotenvy::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let server = base.rsplit_once('/').unwrap().0;
    // The same generated clinics twice: personal fields sealed (as the service writes them) and
    // in clear, to measure what opening them costs a rebuild.
    let pool =
        clinic_infra::db::connect_and_migrate(&format!("{server}/clinic_bench_rebuild_sealed"), 8)
            .await
            .unwrap();
    let plain_pool =
        clinic_infra::db::connect_and_migrate(&format!("{server}/clinic_bench_rebuild_plain"), 8)
            .await
            .unwrap();
    let master = MasterKey::from_base64(BENCH_MASTER_KEY).unwrap();
    let keyring = Keyring::new(pool.clone(), master.clone());
    let plain_keyring = Keyring::new(plain_pool.clone(), master);
    let generated_sealed = ensure_log(&pool, &keyring, true, target).await;
    let generated_plain = ensure_log(&plain_pool, &plain_keyring, false, target).await;
    if generated_sealed || generated_plain {
        // Measure memory in a process that never held the generator's data.
        pool.close().await;
        plain_pool.close().await;
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(std::env::args().skip(1))
            .status()
            .unwrap();
        std::process::exit(status.code().unwrap_or(1));
    }
    let events = event_count(&pool).await;
    let batch_size: u32 = std::env::var("BENCH_BATCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(RebuildOptions::default().batch_size);
    println!(
        "rebuild benchmark, databases clinic_bench_rebuild_sealed and _plain, {events} events, pages of {batch_size}"
    );
    if let Ok(only) = std::env::var("BENCH_ONLY") {
        // Where the time goes: the log read alone, or one projection alone.
        let started = Instant::now();
        if only == "read" {
            let store = EventStore::new(pool.clone());
            let mut cursor = clinic_infra::event_store::LogCursor::START;
            let mut n = 0;
            loop {
                let page = store
                    .read_log(&clinic_infra::event_store::Scope::All, cursor, batch_size)
                    .await
                    .unwrap();
                if page.events.is_empty() {
                    break;
                }
                n += page.events.len();
                cursor = page.next;
            }
            println!(
                "read {n} events in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        } else {
            let projection = ProjectionName::parse(&only).unwrap();
            let report = projections::rebuild(
                &pool,
                &keyring,
                &[projection],
                &RebuildOptions {
                    batch_size,
                    ..RebuildOptions::default()
                },
                |_| {},
            )
            .await
            .unwrap();
            println!(
                "rebuilt {only}: {} events in {:.1} s",
                report.events,
                report.elapsed.as_secs_f64()
            );
        }
        return;
    }

    // The baseline first, then the rebuild, then the baseline again: drift on a shared machine
    // hits both alike.
    let plain_before = plain_inserts(&pool, events).await;
    let unsealed_before = rebuild_rate(&plain_pool, &plain_keyring, batch_size).await;

    let _ = std::fs::write("/proc/self/clear_refs", "5"); // reset VmHWM (peak RSS)
    let (rss_start, _) = memory_kib();
    let mut samples = Vec::new();
    let mut next_sample = 0;
    let report = projections::rebuild(
        &pool,
        &keyring,
        ProjectionName::ALL,
        &RebuildOptions {
            batch_size,
            read_ahead: std::env::var("BENCH_READ_AHEAD")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(RebuildOptions::default().read_ahead),
            ..RebuildOptions::default()
        },
        |done| {
            if done >= next_sample {
                samples.push((done, memory_kib().0));
                next_sample = done + 200_000;
            }
        },
    )
    .await
    .unwrap();
    let (_, peak) = memory_kib();

    let unsealed_after = rebuild_rate(&plain_pool, &plain_keyring, batch_size).await;
    let plain_after = plain_inserts(&pool, events).await;
    let plain = (plain_before + plain_after) / 2;

    let seconds = report.elapsed.as_secs_f64();
    let rebuild_rate = report.events as f64 / seconds;
    let plain_rate = events as f64 / plain.as_secs_f64();
    let rows = read_model_rows(&pool).await;
    println!(
        "rebuild (members, groups): {} events in {seconds:.1} s = {rebuild_rate:.0} events/s; {rows} read-model rows",
        report.events
    );
    println!(
        "plain-SQL baseline: {events} rows in {:.1} s and {:.1} s = {plain_rate:.0} rows/s (mean)",
        plain_before.as_secs_f64(),
        plain_after.as_secs_f64()
    );
    println!("ratio rebuild/baseline: {:.2}x", rebuild_rate / plain_rate);
    let unsealed = (unsealed_before + unsealed_after) / 2.0;
    println!(
        "the same log without sealed fields: {unsealed_before:.0} and {unsealed_after:.0} events/s \
         (mean {unsealed:.0}); sealed/unsealed: {:.2}x",
        rebuild_rate / unsealed
    );
    println!(
        "peak RSS during the rebuild: {:.1} MiB (RSS at start {:.1} MiB)",
        peak as f64 / 1024.0,
        rss_start as f64 / 1024.0
    );
    let flat: Vec<String> = samples
        .iter()
        .map(|(done, kib)| format!("{}k: {:.1} MiB", done / 1000, *kib as f64 / 1024.0))
        .collect();
    println!("RSS as the rebuild progressed: {}", flat.join(", "));
}
