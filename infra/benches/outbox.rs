//! Outbox throughput: 1,000 due emails drained through a local SMTP server (aiosmtpd), beside
//! a same-run baseline that sends 1,000 messages straight through lettre with no outbox (same
//! templates, same transport, same concurrency). Counts the Message-IDs the server received
//! to confirm zero duplicates. Run: `cargo bench -p clinic-infra --bench outbox`.
//!
//! Uses the database `clinic_bench_outbox` on the server of `DATABASE_URL` (dropped and
//! created afresh each run). `BENCH_EMAILS` (default 1000) sets the emails per measurement,
//! `BENCH_CONCURRENCY` (default `1,4`) the worker loops to measure with, and
//! `BENCH_SMTP_HANDLER=mailbox` swaps the raw sink for aiosmtpd's stock Mailbox handler.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/support/smtp.rs"]
mod smtp;

use std::time::Instant;

use clinic_domain::member::{
    AftercareStarted, ConsentGiven, MemberDischarged, MemberReferred, PlannedFollowUp,
};
use clinic_domain::values::{
    AftercarePlan, ConsentKind, ConsentScope, DischargeReason, ReferralSource,
};
use clinic_domain::{ConsentId, FollowUpId, MemberEvent, MemberId};
use clinic_infra::clinic::ClinicId;
use clinic_infra::codec;
use clinic_infra::event_store::{EventStore, ExpectedVersion, Metadata, StreamId};
use clinic_infra::keyring::{Keyring, MasterKey};
use clinic_infra::mailer::{Branding, EmailKind, Mailer, OutgoingEmail};
use clinic_infra::outbox::{self, RetryPolicy};
use clinic_infra::projections::{catch_up, ProjectionName, ProjectionOptions};
use smtp::{duplicates, Handler, SmtpServer};
use sqlx::migrate::MigrateDatabase;
use sqlx::{PgPool, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;

fn server() -> SmtpServer {
    let handler = match std::env::var("BENCH_SMTP_HANDLER").as_deref() {
        Ok("mailbox") => Handler::Mailbox,
        _ => Handler::Sink,
    };
    SmtpServer::start_with(smtp::free_port(), handler)
}

fn mailer(server: &SmtpServer, connections: usize) -> Mailer {
    Mailer::new(
        &server.url(),
        "no-reply@clinic.invalid",
        Branding {
            clinic_name: "Harbor Outpatient".into(),
            contact: Some("+1 555 0100".into()),
        },
        u32::try_from(connections).unwrap(),
    )
    .unwrap()
}

/// `n` members with an address and an email consent, in aftercare: `n` welcome emails due.
async fn seed(pool: &PgPool, keyring: &Keyring, n: usize) {
    let store = EventStore::new(pool.clone());
    let clinic = ClinicId::parse("bench").unwrap();
    let day_ago = OffsetDateTime::now_utc() - time::Duration::days(1);
    for i in 0..n {
        let member = MemberId::new(Uuid::new_v4());
        let events: Vec<MemberEvent> = vec![
            MemberReferred {
                member_id: member,
                name: format!("Member {i}"),
                email: Some(format!("m{i}-{}@example.org", Uuid::new_v4().simple())),
                phone: None,
                source: ReferralSource::SelfReferral,
                primary_substance: None,
                referred_at: day_ago,
            }
            .into(),
            ConsentGiven {
                consent_id: ConsentId::new(Uuid::new_v4()),
                scope: ConsentScope::EmailOutreach,
                kind: ConsentKind::Standard,
                recipient: "the clinic".into(),
                purpose: ConsentScope::EmailOutreach.default_purpose().into(),
                information: ConsentScope::EmailOutreach.default_information().into(),
                expires_at: None,
                expires_on: None,
                signed_by: "the member".into(),
                signed_at: day_ago,
                form_version: "short-form-1".into(),
            }
            .into(),
            MemberDischarged {
                reason: DischargeReason::Completed,
                discharged_at: day_ago,
            }
            .into(),
            AftercareStarted {
                plan: AftercarePlan::AlumniGroup,
                follow_ups: vec![PlannedFollowUp {
                    follow_up_id: FollowUpId::new(Uuid::new_v4()),
                    day_offset: 7,
                    due_at: day_ago + time::Duration::days(7),
                }],
                started_at: day_ago,
            }
            .into(),
        ];
        let metadata = Metadata {
            actor: "bench".into(),
            correlation_id: Uuid::new_v4(),
            causation_id: None,
            request: None,
        };
        let stream = StreamId::of("member", member.as_uuid());
        let mut encoded = Vec::with_capacity(events.len());
        for event in &events {
            let id = Uuid::new_v4();
            let row = codec::encode(keyring, &clinic, &stream, event, id, metadata.clone());
            encoded.push(row.await.unwrap());
        }
        store
            .append(&clinic, &stream, ExpectedVersion::NoStream, &encoded)
            .await
            .unwrap();
    }
}

/// Projects until `n` emails are due (the projection reads commit-safe, so one pass may stop
/// short while other transactions on the server are open).
async fn project_until_due(pool: &PgPool, keyring: &Keyring, n: i64) {
    let options = ProjectionOptions::default();
    for _ in 0..1000 {
        catch_up(pool, keyring, ProjectionName::Outbox, &options)
            .await
            .unwrap();
        if outbox::depth(pool).await.unwrap().due >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the outbox never reached {n} due emails");
}

/// The baseline: `n` messages composed and sent straight through lettre on `concurrency`
/// tasks, no database. Emails per second.
async fn baseline(n: usize, concurrency: usize) -> (f64, usize, usize) {
    let server = server();
    let mailer = mailer(&server, concurrency);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (mailer, next) = (mailer.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let email = OutgoingEmail {
                    to: format!("m{i}@example.org"),
                    kind: EmailKind::AftercareWelcome,
                    message_id: format!("<baseline-{i}@bench.clinic.invalid>"),
                };
                mailer.send(&email).await.unwrap();
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let messages = server.messages();
    (rate, messages.len(), duplicates(&messages).len())
}

/// `n` due emails drained through the outbox on `concurrency` loops. Emails per second.
async fn through_the_outbox(
    pool: &PgPool,
    keyring: &Keyring,
    n: usize,
    concurrency: usize,
) -> (f64, usize, usize) {
    let server = server();
    seed(pool, keyring, n).await;
    project_until_due(pool, keyring, i64::try_from(n).unwrap()).await;
    let mailer = mailer(&server, concurrency);
    let started = Instant::now();
    let drained = outbox::drain(pool, &mailer, &RetryPolicy::default(), concurrency)
        .await
        .unwrap();
    let rate = drained.sent as f64 / started.elapsed().as_secs_f64();
    assert_eq!(drained.sent as usize, n, "{drained:?}");
    let messages = server.messages();
    (rate, messages.len(), duplicates(&messages).len())
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_EMAILS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let concurrencies: Vec<usize> = std::env::var("BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "1,4".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    // The environment, else the checkout's `.env` (as the tests).
    let base = dotenvy::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let url = format!("{}/clinic_bench_outbox", base.rsplit_once('/').unwrap().0);
    if Postgres::database_exists(&url).await.unwrap() {
        Postgres::drop_database(&url).await.unwrap();
    }
    let pool = clinic_infra::db::connect_and_migrate(&url, 16)
        .await
        .unwrap();
    // One master key per database: the keyring refuses a key other than the one it stored.
    let keyring = Keyring::new(pool.clone(), MasterKey::generate().0);

    println!(
        "outbox benchmark: {n} emails per measurement, aiosmtpd ({}) on 127.0.0.1, database clinic_bench_outbox",
        std::env::var("BENCH_SMTP_HANDLER").unwrap_or_else(|_| "sink".into())
    );
    println!(
        "{:<14} {:>16} {:>16} {:>8} {:>10} {:>12}",
        "loops", "lettre emails/s", "outbox emails/s", "ratio", "received", "duplicates"
    );
    for &concurrency in &concurrencies {
        let (direct, direct_received, direct_dups) = baseline(n, concurrency).await;
        let (outboxed, received, dups) = through_the_outbox(&pool, &keyring, n, concurrency).await;
        println!(
            "{concurrency:<14} {direct:>16.0} {outboxed:>16.0} {:>7.2}x {:>10} {:>12}",
            outboxed / direct,
            format!("{direct_received}/{received}"),
            format!("{direct_dups}/{dups}"),
        );
        assert_eq!(received, n, "every email arrived");
        assert_eq!(dups, 0, "no Message-ID twice");
    }
    pool.close().await;
}
