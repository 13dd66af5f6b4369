//! The API under load (README "Benchmarks"): `wrk` with 50 connections against a real
//! `clinic serve` over a seeded clinic (10,000 members over a year, about 100 groups), for the
//! member-list page and the pipeline board; beside the same read-model queries issued directly
//! through sqlx by 50 concurrent tasks in the same run. Reports requests/s, p50/p99 latency
//! and the server's peak RSS.
//!
//! `cargo bench -p clinic-graphql --bench api_load` (needs `wrk`: `apt-get install wrk`).
//! `BENCH_SECONDS` sets each measurement's length (default 10). The seeded database
//! `clinic_bench_api` is kept between runs (seeding takes a while).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clinic_graphql::auth::{Role, TokenKeys};
use clinic_infra::clinic::ClinicId;
use clinic_infra::demo::{seed_demo, DemoOptions};
use clinic_infra::event_store::EventStore;
use clinic_infra::keyring::{Keyring, MasterKey};
use clinic_infra::projections::{catch_up, ProjectionName, ProjectionOptions};
use clinic_infra::read_models::{self, Engagement, MemberFilter, PageRequest};
use secrecy::SecretString;
use sqlx::PgPool;

/// The allocator `clinic serve` runs with, so the direct queries pay what the server pays.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SECRET: &str = "api-load-benchmark-secret-0123456789";
const MEMBERS: u32 = 10_000;
const CONNECTIONS: usize = 50;
const MEMBER_PAGE: &str = "query MemberPage { members(first: 50) { totalCount pageInfo { hasNextPage endCursor } edges { node { id name stage levelOfCare atRisk sessionsAttendedLast7Days } } } }";
const PIPELINE: &str = "query Pipeline { pipeline { stages { stage count } inTreatmentByLevel { levelOfCare count } } }";

struct Figures {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// The benchmark database's master key: fixed, because the seeded clinic is kept between runs
/// and the server must read what an earlier run sealed.
const BENCH_MASTER_KEY: &str = "YmVuY2gtb25seS1tYXN0ZXIta2V5LTMyLWJ5dGVzISE=";

async fn seeded(url: &str) -> PgPool {
    // The pool `clinic serve` has by default, so both paths reach PostgreSQL alike.
    let pool =
        clinic_infra::db::connect_and_migrate(url, clinic_infra::config::DEFAULT_DB_POOL_SIZE)
            .await
            .unwrap();
    let keyring = Keyring::new(
        pool.clone(),
        MasterKey::from_base64(BENCH_MASTER_KEY).unwrap(),
    );
    let clinic = ClinicId::parse("bench").unwrap();
    let members: i64 =
        sqlx::query_scalar("SELECT count(*) FROM member_summaries WHERE clinic = 'bench'")
            .fetch_one(&pool)
            .await
            .unwrap();
    if members < i64::from(MEMBERS) {
        println!("seeding {MEMBERS} members over 365 days (once; kept in clinic_bench_api)...");
        let started = Instant::now();
        let report = seed_demo(
            &EventStore::new(pool.clone()),
            &keyring,
            &DemoOptions::new(clinic, MEMBERS, 365),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
        println!(
            "seeded {} events, {} groups in {:.0} s",
            report.events,
            report.groups,
            started.elapsed().as_secs_f64()
        );
    }
    for projection in ProjectionName::ALL {
        catch_up(&pool, &keyring, *projection, &ProjectionOptions::default())
            .await
            .unwrap();
    }
    // What autovacuum does on a production server (it is off on the development one): without
    // statistics the planner sorts the whole clinic for each member page, for the API and the
    // direct queries alike. Later runs only vacuum what the previous run wrote.
    sqlx::query("VACUUM (ANALYZE)")
        .execute(&pool)
        .await
        .unwrap();
    pool
}

fn wrk(url: &str, token: &str, query: &str, seconds: u64) -> Figures {
    let body = serde_json::json!({ "query": query }).to_string();
    let script = format!(
        "wrk.method = \"POST\"\nwrk.body = {}\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"Authorization\"] = \"Bearer {token}\"\n",
        lua_string(&body)
    );
    let path = std::env::temp_dir().join(format!("clinic-wrk-{}.lua", std::process::id()));
    std::fs::write(&path, script).unwrap();
    let output = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&path)
        .arg(url)
        .output()
        .expect("wrk must be installed (apt-get install wrk)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        !text.contains("Non-2xx"),
        "the API answered errors under load:\n{text}"
    );
    let number_after = |label: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("{label} in:\n{text}"));
        parse_duration_or_number(line.split_whitespace().nth(1).unwrap())
    };
    Figures {
        requests_per_second: number_after("Requests/sec:"),
        p50_ms: number_after("50%"),
        p99_ms: number_after("99%"),
    }
}

fn lua_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// wrk prints `1.23ms`, `456.00us`, `1.02s` or plain numbers.
fn parse_duration_or_number(raw: &str) -> f64 {
    if let Some(v) = raw.strip_suffix("ms") {
        v.parse().unwrap()
    } else if let Some(v) = raw.strip_suffix("us") {
        v.parse::<f64>().unwrap() / 1000.0
    } else if let Some(v) = raw.strip_suffix('s') {
        v.parse::<f64>().unwrap() * 1000.0
    } else {
        raw.parse().unwrap()
    }
}

/// The same read-model query, 50 tasks at once, straight through sqlx.
async fn direct(pool: &PgPool, page: bool, seconds: u64) -> Figures {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let clinic = ClinicId::parse("bench").unwrap();
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if page {
                        read_models::members_page(
                            &pool,
                            &clinic,
                            MemberFilter::default(),
                            &PageRequest::first(50),
                            Engagement::at(time::OffsetDateTime::now_utc()),
                        )
                        .await
                        .unwrap();
                    } else {
                        read_models::pipeline_board(&pool, &clinic).await.unwrap();
                    }
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| all[((all.len() as f64 - 1.0) * q) as usize];
    Figures {
        requests_per_second: all.len() as f64 / elapsed,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
    }
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    // The environment, else the checkout's `.env` (as the tests).
    let base = dotenvy::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let url = format!("{}/clinic_bench_api", base.rsplit_once('/').unwrap().0);
    let pool = seeded(&url).await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_clinic"))
        .arg("serve")
        .env("DATABASE_URL", &url)
        .env("CLINIC_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("CLINIC_JWT_SECRET", SECRET)
        .env("CLINIC_MASTER_KEY", BENCH_MASTER_KEY)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http
        .get(&ready)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = TokenKeys::new(&SecretString::from(SECRET.to_owned())).sign(
        "bench-clinician",
        Role::Clinician,
        &ClinicId::parse("bench").unwrap(),
        time::OffsetDateTime::now_utc(),
        time::Duration::hours(2),
    );
    let endpoint = format!("http://127.0.0.1:{port}/graphql");

    println!("API load, {CONNECTIONS} connections, {seconds} s per measurement, {MEMBERS} members");
    println!(
        "{:<22} {:>12} {:>9} {:>9}   {:>12} {:>9} {:>9}   {:>7}",
        "query", "API req/s", "p50 ms", "p99 ms", "direct req/s", "p50 ms", "p99 ms", "ratio"
    );
    for (name, query, page) in [
        ("member list page", MEMBER_PAGE, true),
        ("pipeline board", PIPELINE, false),
    ] {
        // A GraphQL error (a refusal by the limits, a role) comes back as 200, which `wrk`
        // counts as a success: check the answer once before timing it.
        let answer: serde_json::Value = http
            .post(&endpoint)
            .bearer_auth(&token)
            .json(&serde_json::json!({ "query": query }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            answer.get("errors").is_none() && !answer["data"].is_null(),
            "{name} must answer data, not errors: {answer}"
        );
        let api = wrk(&endpoint, &token, query, seconds);
        let baseline = direct(&pool, page, seconds).await;
        println!(
            "{name:<22} {:>12.0} {:>9.2} {:>9.2}   {:>12.0} {:>9.2} {:>9.2}   {:>6.2}x",
            api.requests_per_second,
            api.p50_ms,
            api.p99_ms,
            baseline.requests_per_second,
            baseline.p50_ms,
            baseline.p99_ms,
            api.requests_per_second / baseline.requests_per_second
        );
    }
    println!("server peak RSS: {:.1} MiB", peak_rss_mib(server.id()));
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let _ = server.wait();
}
