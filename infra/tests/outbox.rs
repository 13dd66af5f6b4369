//! The mail outbox against a real PostgreSQL and a real SMTP server (aiosmtpd, one per test):
//! events appended to the log, the `outbox` projection run, the worker draining to the server,
//! and what the server received read back from its Maildir.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/clinic.rs"]
mod clinic_support;
#[path = "support/smtp.rs"]
mod smtp;

use clinic_support::keyring;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clinic_domain::member::{
    AftercareStarted, CheckInMissed, CheckInScheduled, ConsentGiven, ConsentRevoked, FollowUpDue,
    MemberAdmitted, MemberDetailsChanged, MemberDischarged, MemberErased, MemberReferred,
    PlannedFollowUp,
};
use clinic_domain::values::{
    AftercarePlan, CheckInChannel, ConsentKind, ConsentScope, DischargeReason, LevelOfCare,
    ReferralSource,
};
use clinic_domain::{CheckInId, ConsentId, FollowUpId, MemberEvent, MemberId};
use clinic_infra::clinic::ClinicId;
use clinic_infra::codec;
use clinic_infra::event_store::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
use clinic_infra::mailer::{Branding, EmailKind, Mailer};
use clinic_infra::outbox::{
    self, drain, spawn_workers, sync_staff_directory, try_execute_task, CancelReason,
    ExecutionOutcome, RetryPolicy, StaffDirectory, WorkerOptions,
};
use clinic_infra::projections::{
    catch_up, wait_until_caught_up, Freshness, ProjectionName, ProjectionOptions,
};
use serde_json::json;
use smtp::{duplicates, SmtpServer};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

const CLINIC: &str = "north";
const CONTACT: &str = "+1 555 0100";
const CLINIC_NAME: &str = "Harbor Outpatient";

fn clinic() -> ClinicId {
    ClinicId::parse(CLINIC).unwrap()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn a_day_ago() -> OffsetDateTime {
    now() - time::Duration::days(1)
}

async fn append(pool: &PgPool, member: MemberId, events: Vec<MemberEvent>) {
    let metadata = Metadata {
        actor: "test".into(),
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        request: None,
    };
    let stream = StreamId::of("member", member.as_uuid());
    let keyring = keyring(pool);
    let mut encoded: Vec<NewEvent> = Vec::with_capacity(events.len());
    for event in &events {
        let id = Uuid::new_v4();
        let row = codec::encode(&keyring, &clinic(), &stream, event, id, metadata.clone()).await;
        encoded.push(row.expect("sealed"));
    }
    EventStore::new(pool.clone())
        .append(&clinic(), &stream, ExpectedVersion::Any, &encoded)
        .await
        .expect("appended");
}

/// A group whose name and topic must never reach an email.
async fn a_group_in_the_log(pool: &PgPool) {
    let group = Uuid::new_v4();
    let metadata = Metadata {
        actor: "test".into(),
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        request: None,
    };
    let raw = |event_type: &str, data: serde_json::Value| NewEvent {
        event_id: Uuid::new_v4(),
        event_type: event_type.into(),
        schema_version: 1,
        data,
        metadata: metadata.clone(),
    };
    EventStore::new(pool.clone())
        .append(
            &clinic(),
            &StreamId::of("group", group),
            ExpectedVersion::NoStream,
            &[
                raw(
                    "GroupFormed",
                    json!({"group_id": group, "name": "Tuesday Serenity Circle"}),
                ),
                raw("SessionScheduled", json!({"topic": "Relapse triggers"})),
            ],
        )
        .await
        .expect("appended");
}

/// Runs the outbox projection until it has applied every event appended so far. (One pass may
/// stop short: the log is read commit-safe, and transactions of tests running beside this one,
/// in other databases of the same server, hold back what counts as committed for a moment.)
async fn project(pool: &PgPool) {
    let last: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(pool)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        catch_up(
            pool,
            &keyring(pool),
            ProjectionName::Outbox,
            &ProjectionOptions::default(),
        )
        .await
        .expect("the outbox projection applies the log");
        let caught_up = wait_until_caught_up(
            pool,
            &[ProjectionName::Outbox],
            last.unwrap_or(0),
            Duration::ZERO,
        )
        .await
        .unwrap();
        if caught_up == Freshness::CaughtUp {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the projection did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn mailer(server_url: &str) -> Mailer {
    Mailer::new(
        server_url,
        "no-reply@clinic.invalid",
        Branding {
            clinic_name: CLINIC_NAME.into(),
            contact: Some(CONTACT.into()),
        },
        4,
    )
    .expect("a mailer")
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        max_attempts: 8,
    }
}

fn referred(member: MemberId, email: Option<&str>) -> MemberEvent {
    MemberReferred {
        member_id: member,
        name: "Ann Example".into(),
        email: email.map(Into::into),
        phone: Some("+1 555 0199".into()),
        source: ReferralSource::Court,
        primary_substance: Some("fentanyl".into()),
        referred_at: a_day_ago(),
    }
    .into()
}

fn email_consent(id: ConsentId, expires_at: Option<OffsetDateTime>) -> MemberEvent {
    ConsentGiven {
        consent_id: id,
        scope: ConsentScope::EmailOutreach,
        kind: ConsentKind::Standard,
        recipient: "the clinic".into(),
        purpose: ConsentScope::EmailOutreach.default_purpose().into(),
        information: ConsentScope::EmailOutreach.default_information().into(),
        expires_at,
        expires_on: None,
        signed_by: "the member".into(),
        signed_at: a_day_ago(),
        form_version: "short-form-1".into(),
    }
    .into()
}

fn revoked(id: ConsentId) -> MemberEvent {
    ConsentRevoked {
        consent_id: id,
        received_at: now() - time::Duration::seconds(1),
        how_received: "in writing".into(),
    }
    .into()
}

fn admitted() -> MemberEvent {
    MemberAdmitted {
        level_of_care: LevelOfCare::IntensiveOutpatient,
        primary_counselor: Some("dr-lee".into()),
        admitted_at: a_day_ago(),
    }
    .into()
}

fn discharged_to_aftercare(follow_up: FollowUpId) -> Vec<MemberEvent> {
    vec![
        MemberDischarged {
            reason: DischargeReason::Completed,
            discharged_at: a_day_ago(),
        }
        .into(),
        AftercareStarted {
            plan: AftercarePlan::AlumniGroup,
            follow_ups: vec![PlannedFollowUp {
                follow_up_id: follow_up,
                day_offset: 7,
                due_at: a_day_ago(),
            }],
            started_at: a_day_ago(),
        }
        .into(),
    ]
}

fn follow_up_due(follow_up: FollowUpId) -> MemberEvent {
    FollowUpDue {
        follow_up_id: follow_up,
        day_offset: 7,
        due_at: a_day_ago(),
    }
    .into()
}

fn missed_check_ins(n: usize) -> Vec<MemberEvent> {
    let ids: Vec<CheckInId> = (0..n).map(|_| CheckInId::new(Uuid::new_v4())).collect();
    let mut events: Vec<MemberEvent> = ids
        .iter()
        .map(|&id| {
            CheckInScheduled {
                check_in_id: id,
                due_at: a_day_ago(),
                channel: CheckInChannel::App,
            }
            .into()
        })
        .collect();
    events.extend(ids.iter().map(|&id| {
        MemberEvent::from(CheckInMissed {
            check_in_id: id,
            due_at: a_day_ago(),
        })
    }));
    events
}

/// A member with an address and an email consent, in aftercare: one welcome email due.
async fn a_consenting_member_in_aftercare(pool: &PgPool, address: &str) -> (MemberId, ConsentId) {
    let member = MemberId::new(Uuid::new_v4());
    let consent = ConsentId::new(Uuid::new_v4());
    let mut events = vec![
        referred(member, Some(address)),
        email_consent(consent, None),
    ];
    events.extend(discharged_to_aftercare(FollowUpId::new(Uuid::new_v4())));
    append(pool, member, events).await;
    (member, consent)
}

/// Runs the worker's task until the queue has nothing due, with [`fast_retries`]; the outcomes
/// in order.
async fn every_due_task(pool: &PgPool, mailer: &Mailer) -> Vec<ExecutionOutcome> {
    let mut outcomes = Vec::new();
    loop {
        match try_execute_task(pool, mailer, &fast_retries())
            .await
            .unwrap()
        {
            ExecutionOutcome::EmptyQueue => return outcomes,
            outcome => outcomes.push(outcome),
        }
    }
}

async fn statuses(pool: &PgPool) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT status, count(*) FROM outbox GROUP BY status ORDER BY status")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[track_caller]
fn assert_each_message_once(messages: &[smtp::ReceivedEmail], expected: usize) {
    let dups = duplicates(messages);
    assert!(
        dups.is_empty(),
        "Message-IDs received more than once: {dups:?}"
    );
    assert_eq!(messages.len(), expected, "messages received");
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn the_right_emails_reach_the_right_addresses_with_no_clinical_detail(pool: PgPool) {
    // aiosmtpd's stock Mailbox handler here; the other tests use the raw sink.
    let server = SmtpServer::start_mailbox();
    sync_staff_directory(
        &pool,
        &StaffDirectory::parse("dr-lee=lee@clinic.example").unwrap(),
    )
    .await
    .unwrap();
    a_group_in_the_log(&pool).await;

    // Ann: consent and an address; two missed check-ins in a row (and a third), then
    // aftercare and a due follow-up.
    let ann = MemberId::new(Uuid::new_v4());
    let consent = ConsentId::new(Uuid::new_v4());
    let follow_up = FollowUpId::new(Uuid::new_v4());
    let mut events = vec![
        referred(ann, Some("ann@example.org")),
        email_consent(consent, None),
        admitted(),
    ];
    events.extend(missed_check_ins(3));
    events.extend(discharged_to_aftercare(follow_up));
    events.push(follow_up_due(follow_up));
    append(&pool, ann, events).await;
    // Bob: an address, no consent. Cat: consent, no address.
    let bob = MemberId::new(Uuid::new_v4());
    let mut events = vec![referred(bob, Some("bob@example.org"))];
    events.extend(discharged_to_aftercare(FollowUpId::new(Uuid::new_v4())));
    append(&pool, bob, events).await;
    let cat = MemberId::new(Uuid::new_v4());
    let mut events = vec![
        referred(cat, None),
        email_consent(ConsentId::new(Uuid::new_v4()), None),
    ];
    events.extend(discharged_to_aftercare(FollowUpId::new(Uuid::new_v4())));
    append(&pool, cat, events).await;

    project(&pool).await;
    let drained = drain(&pool, &mailer(&server.url()), &fast_retries(), 2)
        .await
        .unwrap();
    assert_eq!(drained.sent, 3, "{drained:?}");

    let messages = server.messages();
    assert_each_message_once(&messages, 3);
    let mut received: Vec<(String, String)> = messages
        .iter()
        .map(|m| (m.to.clone(), m.subject.clone()))
        .collect();
    received.sort();
    assert_eq!(
        received,
        vec![
            (
                "ann@example.org".to_owned(),
                EmailKind::AftercareWelcome.subject().to_owned()
            ),
            (
                "ann@example.org".to_owned(),
                EmailKind::FollowUpDue.subject().to_owned()
            ),
            (
                "lee@clinic.example".to_owned(),
                EmailKind::OutreachNotice.subject().to_owned()
            ),
        ]
    );
    let rows: Vec<(String, String, Option<Uuid>, String)> =
        sqlx::query_as("SELECT message_id, kind, consent_id, status FROM outbox ORDER BY kind")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 3);
    for (message_id, kind, consent_id, status) in &rows {
        assert_eq!(status, "sent");
        assert!(
            messages.iter().any(|m| &m.message_id == message_id),
            "{message_id} was received"
        );
        // A neutral domain: the clinic's id ("north") is in no header.
        assert!(message_id.ends_with("@mail.invalid>"), "{message_id}");
        let to_member = kind != "outreach_notice";
        assert_eq!(
            *consent_id,
            to_member.then_some(consent.as_uuid()),
            "{kind}"
        );
    }
    for m in &messages {
        assert!(m.from.contains("Care Team") && m.from.contains("no-reply@clinic.invalid"));
        assert!(
            m.text.contains(CLINIC_NAME) && m.html.contains(CLINIC_NAME),
            "{m:?}"
        );
        if m.to == "ann@example.org" {
            assert!(
                m.text.contains(CONTACT) && m.html.contains(CONTACT),
                "{m:?}"
            );
        }
        let everything = m.everything().to_lowercase();
        for clinical in [
            "fentanyl",
            "intensive",
            "outpatient services",
            "level of care",
            "tuesday serenity circle",
            "relapse",
            "check-in",
            "missed",
            "attendance",
            "ann example",
            "555 0199",
            "court",
            "alumni_group",
            "diagnos",
            "substance",
            // The clinic's id, which may say what kind of clinic it is (`Message-ID`).
            "north",
        ] {
            assert!(!everything.contains(clinical), "{clinical:?} in {m:?}");
        }
        assert!(!m.subject.contains("Ann") && !m.subject.contains("Example"));
    }
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn no_consent_or_a_revoked_consent_sends_nothing(pool: PgPool) {
    let server = SmtpServer::start();
    // No consent: no row at all.
    let bob = MemberId::new(Uuid::new_v4());
    let mut events = vec![referred(bob, Some("bob@example.org"))];
    events.extend(discharged_to_aftercare(FollowUpId::new(Uuid::new_v4())));
    append(&pool, bob, events).await;
    // Revoked, and the projection has seen it: the pending row is cancelled.
    let (dan, dan_consent) = a_consenting_member_in_aftercare(&pool, "dan@example.org").await;
    project(&pool).await;
    append(&pool, dan, vec![revoked(dan_consent)]).await;
    project(&pool).await;
    // Two email consents; the row relies on the lasting one, and the other is revoked, the
    // projection not seeing it yet: the member said no to email, and the worker cancels too.
    let fay = MemberId::new(Uuid::new_v4());
    let (lasting, shorter) = (
        ConsentId::new(Uuid::new_v4()),
        ConsentId::new(Uuid::new_v4()),
    );
    let mut events = vec![
        referred(fay, Some("fay@example.org")),
        email_consent(lasting, None),
        email_consent(shorter, Some(now() + time::Duration::days(300))),
    ];
    events.extend(discharged_to_aftercare(FollowUpId::new(Uuid::new_v4())));
    append(&pool, fay, events).await;
    // Revoked after the row was queued, and the projection has NOT seen it yet: the worker
    // reads the log at send time and cancels.
    let (eve, eve_consent) = a_consenting_member_in_aftercare(&pool, "eve@example.org").await;
    project(&pool).await;
    append(&pool, eve, vec![revoked(eve_consent)]).await;
    append(&pool, fay, vec![revoked(shorter)]).await;

    let mailer = mailer(&server.url());
    let outcomes = every_due_task(&pool, &mailer).await;
    assert!(
        matches!(
            outcomes.as_slice(),
            [
                ExecutionOutcome::Cancelled {
                    reason: CancelReason::ConsentRevoked,
                    ..
                },
                ExecutionOutcome::Cancelled {
                    reason: CancelReason::ConsentRevoked,
                    ..
                }
            ]
        ),
        "{outcomes:?}"
    );
    assert_eq!(server.messages().len(), 0);
    let cancelled: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT member_id, cancel_reason FROM outbox WHERE status = 'cancelled' ORDER BY member_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut expected = vec![
        (dan.as_uuid(), "consent_revoked".to_owned()),
        (eve.as_uuid(), "consent_revoked".to_owned()),
        (fay.as_uuid(), "consent_revoked".to_owned()),
    ];
    expected.sort();
    assert_eq!(cancelled, expected);
    assert_eq!(statuses(&pool).await, vec![("cancelled".to_owned(), 3)]);
}

fn details_changed(email: Option<&str>) -> MemberEvent {
    MemberDetailsChanged {
        name: "A. Member".into(),
        email: email.map(Into::into),
        phone: None,
        changed_at: now(),
    }
    .into()
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_queued_email_goes_to_the_members_new_address_or_not_at_all(pool: PgPool) {
    let server = SmtpServer::start();
    // Queued (the projection has seen the aftercare) before each change of details.
    let (gil, _) = a_consenting_member_in_aftercare(&pool, "gil@old.example.org").await;
    let (hal, _) = a_consenting_member_in_aftercare(&pool, "hal@example.org").await;
    project(&pool).await;
    append(
        &pool,
        gil,
        vec![details_changed(Some("gil@new.example.org"))],
    )
    .await;
    append(&pool, hal, vec![details_changed(None)]).await;

    project(&pool).await;
    let outcomes = every_due_task(&pool, &mailer(&server.url())).await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    let messages = server.messages();
    assert_each_message_once(&messages, 1);
    assert_eq!(messages[0].to, "gil@new.example.org");
    let rows: Vec<(Uuid, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT member_id, status, cancel_reason, recipient FROM outbox ORDER BY member_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut expected = vec![
        (
            gil.as_uuid(),
            "sent".to_owned(),
            None,
            Some("gil@new.example.org".to_owned()),
        ),
        (
            hal.as_uuid(),
            "cancelled".to_owned(),
            Some("no_address".to_owned()),
            None,
        ),
    ];
    expected.sort();
    assert_eq!(rows, expected);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn an_address_at_an_internationalised_domain_is_sent_in_its_ascii_form(pool: PgPool) {
    // The test server offers no SMTPUTF8, as many relays do not: the domain as written would
    // have dead-lettered the email; its xn-- form is the same mailbox in ASCII.
    let server = SmtpServer::start();
    a_consenting_member_in_aftercare(&pool, "ann@b\u{fc}cher.example").await;
    project(&pool).await;
    let outcomes = every_due_task(&pool, &mailer(&server.url())).await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    let messages = server.messages();
    assert_each_message_once(&messages, 1);
    assert_eq!(messages[0].to, "ann@xn--bcher-kva.example");
    assert_eq!(statuses(&pool).await, [("sent".to_owned(), 1)]);
}

/// A new address reaches the member's dead letters (an admin may requeue them) but not the
/// counselor's notices, and never a row whose address an erasure in the same page forgot.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_new_address_reaches_dead_letters_but_not_staff_notices_nor_an_erased_row(pool: PgPool) {
    sync_staff_directory(
        &pool,
        &StaffDirectory::parse("dr-lee=lee@clinic.example").unwrap(),
    )
    .await
    .unwrap();
    let ivy = MemberId::new(Uuid::new_v4());
    let mut events = vec![
        referred(ivy, Some("ivy@old.example.org")),
        email_consent(ConsentId::new(Uuid::new_v4()), None),
        admitted(),
    ];
    events.extend(missed_check_ins(2));
    events.extend(discharged_to_aftercare(FollowUpId::new(Uuid::new_v4())));
    append(&pool, ivy, events).await;
    project(&pool).await;
    sqlx::query("UPDATE outbox SET status = 'dead' WHERE kind = 'aftercare_welcome'")
        .execute(&pool)
        .await
        .unwrap();
    append(
        &pool,
        ivy,
        vec![details_changed(Some("ivy@new.example.org"))],
    )
    .await;
    // Jon's welcome is a dead letter too; his change and his erasure are folded in one page.
    let (jon, _) = a_consenting_member_in_aftercare(&pool, "jon@old.example.org").await;
    project(&pool).await;
    sqlx::query("UPDATE outbox SET status = 'dead' WHERE member_id = $1")
        .bind(jon.as_uuid())
        .execute(&pool)
        .await
        .unwrap();
    append(
        &pool,
        jon,
        vec![
            details_changed(Some("jon@new.example.org")),
            MemberErased {
                reason: "member request".into(),
                erased_at: now(),
            }
            .into(),
        ],
    )
    .await;
    project(&pool).await;

    let rows: Vec<(Uuid, String, String, Option<String>)> = sqlx::query_as(
        "SELECT member_id, kind, status, recipient FROM outbox ORDER BY member_id, kind",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut expected = vec![
        (
            ivy.as_uuid(),
            "aftercare_welcome".to_owned(),
            "dead".to_owned(),
            Some("ivy@new.example.org".to_owned()),
        ),
        (
            ivy.as_uuid(),
            "outreach_notice".to_owned(),
            "pending".to_owned(),
            Some("lee@clinic.example".to_owned()),
        ),
        (
            jon.as_uuid(),
            "aftercare_welcome".to_owned(),
            "dead".to_owned(),
            None,
        ),
    ];
    expected.sort();
    assert_eq!(rows, expected);
}

/// A row that an address removal and then a revocation in the same page both reach is cancelled
/// by the removal, as if the page's events had been applied one by one: no address kept.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn the_earlier_of_two_cancellations_in_a_page_is_the_one_recorded(pool: PgPool) {
    let (kim, consent) = a_consenting_member_in_aftercare(&pool, "kim@example.org").await;
    project(&pool).await;
    append(&pool, kim, vec![details_changed(None), revoked(consent)]).await;
    project(&pool).await;
    let row: (String, Option<String>, Option<String>) =
        sqlx::query_as("SELECT status, cancel_reason, recipient FROM outbox")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        row,
        ("cancelled".to_owned(), Some("no_address".to_owned()), None)
    );
}

/// An email already being sent when the address changes went to the address it was claimed
/// with, and its row says so.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_sent_email_records_the_address_it_went_to(pool: PgPool) {
    let (lea, _) = a_consenting_member_in_aftercare(&pool, "lea@old.example.org").await;
    project(&pool).await;
    // The server answers the message 6 s after it: the change is appended and projected
    // meanwhile, once the row is leased.
    let slow = refusing_url(Refuses::Nothing {
        answers_after: Duration::from_secs(6),
    })
    .await;
    let patient = mailer(&slow).with_timeouts(Duration::from_secs(1), Duration::from_secs(20));
    let sending = {
        let pool = pool.clone();
        tokio::spawn(async move { try_execute_task(&pool, &patient, &fast_retries()).await })
    };
    for _ in 0..200 {
        let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM outbox")
            .fetch_one(&pool)
            .await
            .unwrap();
        if attempts == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    append(
        &pool,
        lea,
        vec![details_changed(Some("lea@new.example.org"))],
    )
    .await;
    project(&pool).await;
    let in_flight: Option<String> = sqlx::query_scalar("SELECT recipient FROM outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        in_flight.as_deref(),
        Some("lea@new.example.org"),
        "the projection re-addressed the leased row"
    );
    let outcome = sending.await.unwrap().unwrap();
    assert!(
        matches!(outcome, ExecutionOutcome::Sent { .. }),
        "{outcome:?}"
    );
    let recorded: (String, Option<String>) = sqlx::query_as("SELECT status, recipient FROM outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        recorded,
        ("sent".to_owned(), Some("lea@old.example.org".to_owned()))
    );
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn an_expired_consent_sends_nothing(pool: PgPool) {
    let server = SmtpServer::start();
    // In force when aftercare starts, expired by the time the worker runs.
    let expires_at = now() + time::Duration::milliseconds(1500);
    let member = MemberId::new(Uuid::new_v4());
    let consent = ConsentId::new(Uuid::new_v4());
    let follow_up = FollowUpId::new(Uuid::new_v4());
    let mut events = vec![
        referred(member, Some("fay@example.org")),
        email_consent(consent, Some(expires_at)),
    ];
    events.extend(discharged_to_aftercare(follow_up));
    events.push(follow_up_due(follow_up));
    append(&pool, member, events).await;
    project(&pool).await;
    assert_eq!(statuses(&pool).await, vec![("pending".to_owned(), 2)]);

    let wait = expires_at - now();
    if wait.is_positive() {
        tokio::time::sleep(wait.unsigned_abs() + Duration::from_millis(50)).await;
    }
    let outcome = try_execute_task(&pool, &mailer(&server.url()), &fast_retries())
        .await
        .unwrap();
    assert!(
        matches!(
            outcome,
            ExecutionOutcome::Cancelled {
                reason: CancelReason::ConsentExpired,
                ..
            }
        ),
        "{outcome:?}"
    );
    // Every pending email that consent allowed went with it.
    assert_eq!(statuses(&pool).await, vec![("cancelled".to_owned(), 2)]);
    let drained = drain(&pool, &mailer(&server.url()), &fast_retries(), 1)
        .await
        .unwrap();
    assert_eq!(drained.sent, 0);
    assert_eq!(server.messages().len(), 0);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn smtp_down_then_up_delivers_everything_queued_exactly_once(pool: PgPool) {
    let port = smtp::free_port();
    let mailer = mailer(&format!("smtp://127.0.0.1:{port}"));
    for i in 0..10 {
        a_consenting_member_in_aftercare(&pool, &format!("m{i}@example.org")).await;
    }
    project(&pool).await;

    // Down: every email fails once and waits for its retry (at least a second: long enough
    // for this pass to end before any falls due again); nothing is lost.
    let patient = RetryPolicy {
        base: Duration::from_secs(2),
        max_backoff: Duration::from_secs(2),
        max_attempts: 8,
    };
    let drained = drain(&pool, &mailer, &patient, 2).await.unwrap();
    assert_eq!((drained.sent, drained.retrying), (0, 10), "{drained:?}");
    let errors: Vec<(i32, Option<String>)> =
        sqlx::query_as("SELECT attempts, last_error FROM outbox WHERE status = 'pending'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(errors.len(), 10);
    for (attempts, error) in &errors {
        assert_eq!(*attempts, 1);
        let error = error.as_deref().unwrap_or_default();
        assert!(!error.contains('@') && !error.is_empty(), "{error}");
    }

    // Up: drained as the retries fall due.
    let server = SmtpServer::start_on(port);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while outbox::depth(&pool).await.unwrap().pending > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still pending after 60 s"
        );
        drain(&pool, &mailer, &fast_retries(), 2).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_each_message_once(&server.messages(), 10);
    assert_eq!(statuses(&pool).await, vec![("sent".to_owned(), 10)]);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_worker_killed_mid_batch_and_restarted_sends_nothing_twice(pool: PgPool) {
    let server = SmtpServer::start();
    let mailer = mailer(&server.url());
    for i in 0..40 {
        a_consenting_member_in_aftercare(&pool, &format!("m{i}@example.org")).await;
    }
    project(&pool).await;

    // Two worker loops, aborted wherever they are once some mail is out.
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let options = WorkerOptions {
        concurrency: 2,
        idle_poll: Duration::from_millis(20),
        error_pause: Duration::from_millis(20),
        retry: fast_retries(),
    };
    let workers = spawn_workers(&pool, &mailer, &options, &stop);
    let reached = wait_for_count(&server, 10).await;
    assert!(reached >= 10, "only {reached} messages before the kill");
    for worker in &workers {
        worker.abort();
    }
    for worker in workers {
        let _ = worker.await;
    }

    // Restarted: the rest goes, nothing twice.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while outbox::depth(&pool).await.unwrap().pending > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still pending after 60 s"
        );
        drain(&pool, &mailer, &fast_retries(), 2).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_each_message_once(&server.messages(), 40);
    assert_eq!(statuses(&pool).await, vec![("sent".to_owned(), 40)]);
}

/// Waits (at most 30 s) until the server holds `n` messages; returns how many it holds.
async fn wait_for_count(server: &SmtpServer, n: usize) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let count = server.count();
        if count >= n || tokio::time::Instant::now() >= deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn two_workers_at_once_send_nothing_twice(pool: PgPool) {
    let server = SmtpServer::start();
    for i in 0..60 {
        a_consenting_member_in_aftercare(&pool, &format!("m{i}@example.org")).await;
    }
    project(&pool).await;
    // Two "processes": a pool and a mailer each, four loops each.
    let other_pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(pool.connect_options().as_ref().clone())
        .await
        .unwrap();
    let (mailer_a, mailer_b, policy) =
        (mailer(&server.url()), mailer(&server.url()), fast_retries());
    let (a, b) = tokio::join!(
        drain(&pool, &mailer_a, &policy, 4),
        drain(&other_pool, &mailer_b, &policy, 4),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.sent + b.sent, 60, "{a:?} {b:?}");
    assert_each_message_once(&server.messages(), 60);
    assert_eq!(statuses(&pool).await, vec![("sent".to_owned(), 60)]);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn failures_are_retried_then_dead_lettered_and_listed_for_admins(pool: PgPool) {
    // An address the mailer cannot use: dead at once (retrying cannot help).
    let (bad, _) = a_consenting_member_in_aftercare(&pool, "not an address").await;
    // A server that is never up: dead after the bounded number of attempts.
    let (down, _) = a_consenting_member_in_aftercare(&pool, "gus@example.org").await;
    project(&pool).await;
    let mailer = mailer(&format!("smtp://127.0.0.1:{}", smtp::free_port()));
    let policy = RetryPolicy {
        base: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        max_attempts: 3,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while outbox::depth(&pool).await.unwrap().pending > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still pending after 60 s"
        );
        drain(&pool, &mailer, &policy, 1).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let depth = outbox::depth(&pool).await.unwrap();
    assert_eq!((depth.pending, depth.dead), (0, 2));
    let mut dead = outbox::dead_letters(&pool, &clinic(), 10).await.unwrap();
    dead.sort_by_key(|d| d.attempts);
    let summary: Vec<(MemberId, i32, Option<String>)> = dead
        .iter()
        .map(|d| (d.member_id, d.attempts, d.last_error.clone()))
        .collect();
    assert_eq!(summary[0], (bad, 1, Some("invalid_recipient".to_owned())));
    assert_eq!((summary[1].0, summary[1].1), (down, 3));
    assert!(!summary[1].2.as_deref().unwrap_or("@").contains('@'));
    let other = ClinicId::parse("south").unwrap();
    assert!(outbox::dead_letters(&pool, &other, 10)
        .await
        .unwrap()
        .is_empty());
}

/// What [`refusing_server`] refuses, on every connection.
#[derive(Clone, Copy)]
enum Refuses {
    /// The session, with a 554 greeting.
    Greeting,
    /// Every login (535) and every sender (553, `MAIL FROM`): a client with credentials
    /// meets the first, one without the second.
    LoginOrSender,
    /// Every recipient (`RCPT TO`), with this answer.
    Recipient(&'static str),
    /// Every message, at the end of its data, with this answer.
    Message(&'static str),
    /// Nothing, but it answers every message only this long after its end.
    Nothing { answers_after: Duration },
}

/// An SMTP server that refuses `what` on every connection. Returns its port and how many
/// connections it took.
async fn refusing_server(what: Refuses) -> (u16, Arc<AtomicUsize>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sessions = Arc::new(AtomicUsize::new(0));
    let counted = sessions.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                if matches!(what, Refuses::Greeting) {
                    let _ = write.write_all(b"554 5.3.2 not accepting mail\r\n").await;
                    return;
                }
                let _ = write.write_all(b"220 fake ESMTP\r\n").await;
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line != "." {
                            continue;
                        }
                        in_data = false;
                    }
                    let answer: String = match (line.get(..4).unwrap_or(line.as_str()), what) {
                        ("EHLO", _) => "250-fake\r\n250 AUTH PLAIN LOGIN\r\n".into(),
                        ("AUTH", _) => "535 5.7.8 authentication credentials invalid\r\n".into(),
                        (
                            "MAIL",
                            Refuses::Recipient(_) | Refuses::Message(_) | Refuses::Nothing { .. },
                        ) => "250 2.1.0 ok\r\n".into(),
                        ("MAIL", _) => "553 5.7.1 sender address rejected\r\n".into(),
                        ("RCPT", Refuses::Recipient(answer)) => format!("{answer}\r\n"),
                        ("RCPT", Refuses::Message(_) | Refuses::Nothing { .. }) => {
                            "250 2.1.5 ok\r\n".into()
                        }
                        ("DATA", Refuses::Message(_) | Refuses::Nothing { .. }) => {
                            in_data = true;
                            "354 end data with <CR><LF>.<CR><LF>\r\n".into()
                        }
                        (".", Refuses::Message(answer)) => format!("{answer}\r\n"),
                        (".", Refuses::Nothing { answers_after }) => {
                            tokio::time::sleep(answers_after).await;
                            "250 2.0.0 queued\r\n".into()
                        }
                        ("RSET", _) => "250 2.0.0 ok\r\n".into(),
                        ("QUIT", _) => "221 bye\r\n".into(),
                        _ => "503 5.5.1 bad sequence\r\n".into(),
                    };
                    if write.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, sessions)
}

/// The `CLINIC_SMTP_URL` of a [`refusing_server`] refusing `what`, without credentials.
async fn refusing_url(what: Refuses) -> String {
    format!("smtp://127.0.0.1:{}", refusing_server(what).await.0)
}

/// A server refusing the session, the sender, or the message on policy grounds (5.7.x at the end
/// of the data: the account not allowed to send as the sender, DMARC) is the server's or the
/// configuration's trouble (a rotated password, maintenance, a mistyped `CLINIC_MAIL_FROM`),
/// not the email's: even its 5xx answers are retried, never a dead letter at the first try.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_refused_greeting_login_or_sender_is_retried_not_dead_lettered(pool: PgPool) {
    a_consenting_member_in_aftercare(&pool, "gus@example.org").await;
    project(&pool).await;
    let policy = RetryPolicy {
        base: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
        max_attempts: 8,
    };
    let greeting = refusing_url(Refuses::Greeting).await;
    let login = format!(
        "smtp://user:wrong@127.0.0.1:{}",
        refusing_server(Refuses::LoginOrSender).await.0
    );
    let sender = refusing_url(Refuses::LoginOrSender).await;
    let message = refusing_url(Refuses::Message(
        "550 5.7.1 sender not authorized for this account",
    ))
    .await;
    for (url, error) in [
        (greeting, "session permanent 554"),
        (login, "session permanent 535"),
        (sender, "sender permanent 553"),
        (message, "policy permanent 550"),
    ] {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let outcome = try_execute_task(&pool, &mailer(&url), &policy)
            .await
            .unwrap();
        assert!(
            matches!(
                outcome,
                ExecutionOutcome::Retrying {
                    server_trouble: true,
                    ..
                }
            ),
            "{url}: {outcome:?}"
        );
        let last_error: Option<String> = sqlx::query_scalar("SELECT last_error FROM outbox")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(last_error.as_deref(), Some(error));
    }
    assert_eq!(statuses(&pool).await, [("pending".to_owned(), 1)]);

    // A recipient refused on policy grounds (relay access denied, or that mailbox's own
    // policy): retried, but the server answered, so the other emails go on.
    let relay = refusing_url(Refuses::Recipient(
        "554 5.7.1 <gus@example.org>: Relay access denied",
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let outcome = try_execute_task(&pool, &mailer(&relay), &policy)
        .await
        .unwrap();
    assert!(
        matches!(
            outcome,
            ExecutionOutcome::Retrying {
                server_trouble: false,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(statuses(&pool).await, [("pending".to_owned(), 1)]);

    // A recipient refused for itself (no such mailbox) is the email's own trouble: dead.
    let unknown = refusing_url(Refuses::Recipient(
        "550 5.1.1 <gus@example.org>: no such user",
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let outcome = try_execute_task(&pool, &mailer(&unknown), &policy)
        .await
        .unwrap();
    assert!(
        matches!(outcome, ExecutionOutcome::Dead { .. }),
        "{outcome:?}"
    );
}

/// A server refusing every login is tried a few times, with the retry backoff, not once per
/// queued email nor once per worker loop: a mail provider locks an account whose login fails
/// too often.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_refused_login_pauses_every_worker_loop_instead_of_trying_every_email(pool: PgPool) {
    for n in 0..6 {
        a_consenting_member_in_aftercare(&pool, &format!("member{n}@example.org")).await;
    }
    project(&pool).await;
    let (port, sessions) = refusing_server(Refuses::LoginOrSender).await;
    let options = WorkerOptions {
        concurrency: 4,
        idle_poll: Duration::from_millis(20),
        error_pause: Duration::from_millis(20),
        retry: RetryPolicy {
            base: Duration::from_millis(400),
            max_backoff: Duration::from_millis(400),
            max_attempts: 50,
        },
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = spawn_workers(
        &pool,
        &mailer(&format!("smtp://user:wrong@127.0.0.1:{port}")),
        &options,
        &stopped,
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.send(true).unwrap();
    for worker in workers {
        worker.await.unwrap();
    }
    // The four loops start together (up to 4 logins), then one probe every 200-400 ms: at
    // most 9 in a second. Each loop pausing on its own made at least 12 (each tries at 0 ms
    // and again within every 400 ms); trying each email in turn, one every few milliseconds.
    let tried = sessions.load(Ordering::SeqCst);
    assert!((1..=9).contains(&tried), "{tried} logins in a second");
    assert_eq!(statuses(&pool).await, [("pending".to_owned(), 6)]);
}

/// A dead letter can be requeued once its cause is fixed, but not after the member revoked
/// their consent (the revocation cancels it), nor twice.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_dead_letter_is_requeued_unless_the_member_revoked_meanwhile(pool: PgPool) {
    let (member, consent) = a_consenting_member_in_aftercare(&pool, "gus@example.org").await;
    project(&pool).await;
    let once = RetryPolicy {
        base: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
        max_attempts: 1,
    };
    let down = mailer(&format!("smtp://127.0.0.1:{}", smtp::free_port()));
    let outcome = try_execute_task(&pool, &down, &once).await.unwrap();
    let ExecutionOutcome::Dead { id, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(outbox::requeue_dead_letter(&pool, &clinic(), id)
        .await
        .unwrap());
    assert_eq!(statuses(&pool).await, [("pending".to_owned(), 1)]);
    let outcome = try_execute_task(&pool, &down, &once).await.unwrap();
    assert!(
        matches!(outcome, ExecutionOutcome::Dead { .. }),
        "{outcome:?}"
    );

    append(&pool, member, vec![revoked(consent)]).await;
    project(&pool).await;
    assert_eq!(statuses(&pool).await, [("cancelled".to_owned(), 1)]);
    assert!(!outbox::requeue_dead_letter(&pool, &clinic(), id)
        .await
        .unwrap());
    let other = ClinicId::parse("south").unwrap();
    assert!(!outbox::requeue_dead_letter(&pool, &other, id)
        .await
        .unwrap());
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn replaying_the_log_never_queues_an_email_twice(pool: PgPool) {
    let server = SmtpServer::start();
    for i in 0..5 {
        a_consenting_member_in_aftercare(&pool, &format!("m{i}@example.org")).await;
    }
    project(&pool).await;
    drain(&pool, &mailer(&server.url()), &fast_retries(), 1)
        .await
        .unwrap();
    // The checkpoint goes back to the start (a bug, an operator): the whole log again.
    sqlx::query(
        "UPDATE projection_checkpoints SET transaction_id = 0, position = 0 \
         WHERE projection = 'outbox'",
    )
    .execute(&pool)
    .await
    .unwrap();
    project(&pool).await;
    let drained = drain(&pool, &mailer(&server.url()), &fast_retries(), 1)
        .await
        .unwrap();
    assert_eq!(drained.sent, 0);
    assert_eq!(statuses(&pool).await, vec![("sent".to_owned(), 5)]);
    assert_each_message_once(&server.messages(), 5);
    let ids: BTreeSet<String> = server
        .messages()
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(ids.len(), 5);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn an_email_in_flight_does_not_hold_back_the_projections(pool: PgPool) {
    // A server that accepts connections and never says a word: the send hangs.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", silent.local_addr().unwrap());
    let _server = tokio::spawn(async move {
        let (socket, _) = silent.accept().await.unwrap();
        std::future::pending::<()>().await;
        drop(socket);
    });
    a_consenting_member_in_aftercare(&pool, "hal@example.org").await;
    project(&pool).await;
    let in_flight = tokio::spawn({
        let (pool, mailer) = (pool.clone(), mailer(&url));
        async move { try_execute_task(&pool, &mailer, &fast_retries()).await }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while outbox::depth(&pool).await.unwrap().due > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the email was never claimed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // While it hangs, the log goes on and the projection follows (a claim held in an open
    // transaction would keep every subscriber from reading past it).
    a_consenting_member_in_aftercare(&pool, "ida@example.org").await;
    project(&pool).await;
    assert!(!in_flight.is_finished(), "the send is still in flight");
    assert_eq!(
        statuses(&pool).await,
        vec![("pending".to_owned(), 2)],
        "the new email is queued beside the one in flight"
    );
    in_flight.abort();
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn processes_starting_together_each_store_the_staff_directory_whole(pool: PgPool) {
    // Several `clinic serve` starting at once, the last two with a newer directory.
    let old =
        StaffDirectory::parse("dr-lee=lee@clinic.example,north/dr-kim=kim@north.example").unwrap();
    let new =
        StaffDirectory::parse("dr-lee=lee@clinic.example,north/dr-ray=ray@north.example").unwrap();
    for round in 0..5 {
        let syncs: Vec<_> = (0..8)
            .map(|n| {
                let pool = pool.clone();
                let directory = if n < 6 { old.clone() } else { new.clone() };
                tokio::spawn(async move { sync_staff_directory(&pool, &directory).await })
            })
            .collect();
        for sync in syncs {
            sync.await.unwrap().expect("every sync succeeds");
        }
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT clinic, sub, address FROM outbox_staff_emails ORDER BY 1, 2")
                .fetch_all(&pool)
                .await
                .unwrap();
        let one_directory = |directory: &StaffDirectory| {
            let mut entries: Vec<(String, String, String)> = directory
                .entries()
                .map(|(c, s, a)| (c.to_owned(), s.to_owned(), a.to_owned()))
                .collect();
            entries.sort();
            entries
        };
        assert!(
            rows == one_directory(&old) || rows == one_directory(&new),
            "round {round}: one whole directory, not a mix: {rows:?}"
        );
    }
}

/// An event this build cannot read (one a newer release writes, met by an older worker during
/// a rolling upgrade) holds the member's emails back, with the usual backoff, until a worker
/// that can read it comes; they are dead-lettered only when their attempts run out.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn an_unreadable_stream_holds_its_emails_back_instead_of_killing_them(pool: PgPool) {
    let server = SmtpServer::start();
    let (member, _) = a_consenting_member_in_aftercare(&pool, "ivy@example.org").await;
    project(&pool).await;
    let newer = NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "MemberMovedAway".into(),
        schema_version: 1,
        data: serde_json::json!({ "moved_at": "2026-11-01T00:00:00Z" }),
        metadata: Metadata {
            actor: "a-newer-release".into(),
            correlation_id: Uuid::new_v4(),
            causation_id: None,
            request: None,
        },
    };
    let stream = StreamId::of("member", member.as_uuid());
    EventStore::new(pool.clone())
        .append(&clinic(), &stream, ExpectedVersion::Any, &[newer])
        .await
        .unwrap();
    let mailer = mailer(&server.url());
    let policy = RetryPolicy {
        base: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        max_attempts: 3,
    };
    let mut outcomes = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while outcomes.len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "{outcomes:?}");
        match try_execute_task(&pool, &mailer, &policy).await.unwrap() {
            ExecutionOutcome::EmptyQueue => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            outcome => outcomes.push(outcome),
        }
    }
    assert!(
        matches!(
            outcomes[..],
            [
                ExecutionOutcome::Held { .. },
                ExecutionOutcome::Held { .. },
                ExecutionOutcome::Dead { .. }
            ]
        ),
        "{outcomes:?}"
    );
    let dead = outbox::dead_letters(&pool, &clinic(), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("undecodable_stream"));
    assert_eq!(server.count(), 0, "nothing sent unchecked");
}

/// An email of a kind only a newer release sends (met by an older worker during a rolling
/// upgrade) is left for that release: not leased, its attempts not counted, while this build's
/// own emails go.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn an_email_of_a_kind_this_build_does_not_send_is_left_alone(pool: PgPool) {
    let server = SmtpServer::start();
    a_consenting_member_in_aftercare(&pool, "jo@example.org").await;
    project(&pool).await;
    for statement in [
        // What a newer release's migration would do.
        "ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check",
        "CREATE TABLE newer AS SELECT * FROM outbox",
        "UPDATE newer SET id = gen_random_uuid(), event_id = gen_random_uuid(),
                kind = 'relapse_prevention_tip', message_id = '<newer@mail.invalid>'",
        "INSERT INTO outbox SELECT * FROM newer",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    let mailer = mailer(&server.url());
    let outcomes = every_due_task(&pool, &mailer).await;
    assert!(
        matches!(outcomes[..], [ExecutionOutcome::Sent { .. }]),
        "{outcomes:?}"
    );
    let newer: (String, i32) =
        sqlx::query_as("SELECT status, attempts FROM outbox WHERE kind = 'relapse_prevention_tip'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(newer, ("pending".to_owned(), 0));
    assert_eq!(server.count(), 1);
}

/// A server that answers a message only after scanning it (a content filter) has it: waited
/// for longer than the exchange before it (a retry would send a second copy), and when even
/// that wait runs out, the email is retried as server trouble, saying it may have arrived, at
/// once (the connection dropped, not closed with a QUIT that would wait for the scan too).
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_server_slow_to_answer_a_message_is_waited_for(pool: PgPool) {
    a_consenting_member_in_aftercare(&pool, "kai@example.org").await;
    project(&pool).await;
    let scanning = refusing_url(Refuses::Nothing {
        answers_after: Duration::from_secs(4),
    })
    .await;
    let exchange = Duration::from_secs(1);
    let impatient = mailer(&scanning).with_timeouts(exchange, Duration::from_secs(1));
    let started = std::time::Instant::now();
    let outcome = try_execute_task(&pool, &impatient, &fast_retries())
        .await
        .unwrap();
    // Given up on after its wait, the connection is dropped: a QUIT would wait for the
    // server's answer to the message as well.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            outcome,
            ExecutionOutcome::Retrying {
                server_trouble: true,
                ..
            }
        ),
        "{outcome:?}"
    );
    let last_error: Option<String> = sqlx::query_scalar("SELECT last_error FROM outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        last_error.as_deref(),
        Some("no answer to the message (it may have arrived)")
    );

    sqlx::query("UPDATE outbox SET next_attempt_at = now()")
        .execute(&pool)
        .await
        .unwrap();
    let patient = mailer(&scanning).with_timeouts(exchange, Duration::from_secs(10));
    let outcome = try_execute_task(&pool, &patient, &fast_retries())
        .await
        .unwrap();
    assert!(
        matches!(outcome, ExecutionOutcome::Sent { .. }),
        "{outcome:?}"
    );
}

/// A row stopped because another email consent was revoked since it was queued cancels that
/// row only: an email its own consent allows, queued after the revocation, still goes. (The
/// worker met the row before the projection cancelled it: the projection's verdict is undone
/// here to stage that race.)
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn another_consents_revocation_cancels_the_rows_before_it_only(pool: PgPool) {
    let server = SmtpServer::start();
    let member = MemberId::new(Uuid::new_v4());
    let (lasting, shorter) = (
        ConsentId::new(Uuid::new_v4()),
        ConsentId::new(Uuid::new_v4()),
    );
    let follow_up = FollowUpId::new(Uuid::new_v4());
    let mut events = vec![
        referred(member, Some("lou@example.org")),
        email_consent(lasting, None),
        email_consent(shorter, Some(now() + time::Duration::days(300))),
    ];
    events.extend(discharged_to_aftercare(follow_up));
    append(&pool, member, events).await;
    append(
        &pool,
        member,
        vec![revoked(shorter), follow_up_due(follow_up)],
    )
    .await;
    project(&pool).await;
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, status FROM outbox ORDER BY event_version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            ("aftercare_welcome".to_owned(), "cancelled".to_owned()),
            ("follow_up_due".to_owned(), "pending".to_owned()),
        ]
    );
    sqlx::query(
        "UPDATE outbox SET status = 'pending', cancel_reason = NULL,
                next_attempt_at = now() - interval '1 minute'
          WHERE kind = 'aftercare_welcome'",
    )
    .execute(&pool)
    .await
    .unwrap();

    let mailer = mailer(&server.url());
    let outcomes = every_due_task(&pool, &mailer).await;
    assert!(
        matches!(
            outcomes[..],
            [
                ExecutionOutcome::Cancelled {
                    reason: CancelReason::ConsentRevoked,
                    ..
                },
                ExecutionOutcome::Sent { .. }
            ]
        ),
        "{outcomes:?}"
    );
    assert_eq!(server.count(), 1);
}
