//! The event store against a real PostgreSQL: every test gets a fresh migrated database.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use clinic_infra::clinic::ClinicId;
use clinic_infra::event_store::{
    EventStore, EventStoreError, ExpectedVersion, LogCursor, Metadata, NewEvent, Notifications,
    Scope, StreamId, NOTIFY_CHANNEL,
};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

fn clinic(name: &str) -> ClinicId {
    ClinicId::parse(name).unwrap()
}

fn member_stream() -> StreamId {
    StreamId::of("member", Uuid::new_v4())
}

fn event(event_type: &str, data: serde_json::Value) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        data,
        metadata: Metadata {
            actor: "tester".into(),
            correlation_id: Uuid::new_v4(),
            causation_id: None,
            request: None,
        },
    }
}

async fn count_events(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[track_caller]
fn assert_conflict(result: Result<impl std::fmt::Debug, EventStoreError>, want_actual: u64) {
    match result {
        Err(EventStoreError::Conflict { actual, .. }) => assert_eq!(actual, want_actual),
        other => panic!("expected a conflict at version {want_actual}, got {other:?}"),
    }
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn appends_check_the_expected_version_and_write_nothing_on_conflict(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (c, s) = (clinic("north"), member_stream());

    let first = store
        .append(
            &c,
            &s,
            ExpectedVersion::NoStream,
            &[event("MemberReferred", json!({}))],
        )
        .await
        .unwrap();
    assert_eq!(first.stream_version, 1);
    assert!(!first.duplicate);

    let again = store
        .append(
            &c,
            &s,
            ExpectedVersion::NoStream,
            &[event("MemberReferred", json!({}))],
        )
        .await;
    assert_conflict(again, 1);

    let batch = [
        event("IntakeCompleted", json!({})),
        event("MemberAdmitted", json!({})),
    ];
    let second = store
        .append(&c, &s, ExpectedVersion::Exactly(1), &batch)
        .await
        .unwrap();
    assert_eq!(second.stream_version, 3);
    assert_eq!(second.positions.len(), 2);

    let stale = store
        .append(
            &c,
            &s,
            ExpectedVersion::Exactly(2),
            &[event("X", json!({}))],
        )
        .await;
    assert_conflict(stale, 3);
    let missing = store
        .append(
            &c,
            &member_stream(),
            ExpectedVersion::Exactly(1),
            &[event("X", json!({}))],
        )
        .await;
    assert_conflict(missing, 0);
    assert_eq!(
        count_events(&pool).await,
        3,
        "refused appends wrote nothing"
    );

    let any = store
        .append(&c, &s, ExpectedVersion::Any, &[event("GoalSet", json!({}))])
        .await
        .unwrap();
    assert_eq!(any.stream_version, 4);

    let versions: Vec<i64> = store
        .read_stream(&c, &s, 1)
        .await
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(versions, [1, 2, 3, 4]);
    let streams: (String, i64) =
        sqlx::query_as("SELECT category, version FROM streams WHERE stream_id = $1")
            .bind(s.as_str())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(streams, ("member".to_owned(), 4));
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn an_empty_append_is_refused(pool: PgPool) {
    let store = EventStore::new(pool);
    let result = store
        .append(
            &clinic("north"),
            &member_stream(),
            ExpectedVersion::Any,
            &[],
        )
        .await;
    assert!(matches!(
        result,
        Err(EventStoreError::BatchSize { count: 0, .. })
    ));
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn concurrent_writers_to_one_stream_each_win_exactly_one_version(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (c, s) = (clinic("north"), member_stream());

    // 12 writers race for the first event: exactly one wins.
    let racers: Vec<_> = (0..12)
        .map(|_| {
            let (store, c, s) = (store.clone(), c.clone(), s.clone());
            tokio::spawn(async move {
                store
                    .append(
                        &c,
                        &s,
                        ExpectedVersion::NoStream,
                        &[event("MemberReferred", json!({}))],
                    )
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(_) => wins += 1,
            Err(EventStoreError::Conflict { actual: 1, .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(wins, 1);

    // 8 writers each append 10 events with read-then-append retries: 81 events, no gaps.
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let (store, c, s) = (store.clone(), c.clone(), s.clone());
            tokio::spawn(async move {
                let mut conflicts = 0;
                for _ in 0..10 {
                    loop {
                        let version = store.stream_version(&c, &s).await.unwrap();
                        match store
                            .append(
                                &c,
                                &s,
                                ExpectedVersion::Exactly(version),
                                &[event("GoalSet", json!({}))],
                            )
                            .await
                        {
                            Ok(_) => break,
                            Err(EventStoreError::Conflict { .. }) => conflicts += 1,
                            Err(other) => panic!("unexpected {other:?}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM events WHERE stream_id = $1 ORDER BY version")
            .bind(s.as_str())
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(versions, (1..=81).collect::<Vec<i64>>());
    assert!(store.verify(&Scope::All).await.unwrap().ok());
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn concurrent_appends_at_any_version_to_a_new_stream_all_land_in_order(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (c, s) = (clinic("north"), member_stream());

    // Every writer but the first waits for the stream's lock while the first creates the
    // stream: each must then extend the newest stream row, not fail on the one its statement
    // could not see when it began.
    let writers: Vec<_> = (0..12)
        .map(|i| {
            let (store, c, s) = (store.clone(), c.clone(), s.clone());
            tokio::spawn(async move {
                let batch = [
                    event("GoalSet", json!({"i": i})),
                    event("GoalSet", json!({})),
                ];
                store.append(&c, &s, ExpectedVersion::Any, &batch).await
            })
        })
        .collect();
    let mut last_versions = Vec::new();
    for writer in writers {
        last_versions.push(writer.await.unwrap().unwrap().stream_version);
    }
    last_versions.sort_unstable();
    assert_eq!(last_versions, (1..=12).map(|i| i * 2).collect::<Vec<u64>>());
    assert_eq!(store.stream_version(&c, &s).await.unwrap(), 24);
    assert!(store.verify(&Scope::All).await.unwrap().ok());
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_retried_append_returns_the_original_result_and_stores_nothing_twice(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (c, s) = (clinic("north"), member_stream());
    let batch = [
        event("MemberReferred", json!({"n": 1})),
        event("IntakeCompleted", json!({})),
    ];

    let original = store
        .append(&c, &s, ExpectedVersion::NoStream, &batch)
        .await
        .unwrap();
    // The retry's expected version is stale (the original succeeded), yet it is answered as
    // the original was: the client never learns of a conflict it did not cause.
    let retry = store
        .append(&c, &s, ExpectedVersion::NoStream, &batch)
        .await
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.positions, original.positions);
    assert_eq!(retry.stream_version, 2);
    assert_eq!(count_events(&pool).await, 2);
    // Whatever the retry expects: any version (the stored ids refuse the insert), or a version
    // the stream has since passed.
    for expected in [ExpectedVersion::Any, ExpectedVersion::Exactly(1)] {
        let retry = store.append(&c, &s, expected, &batch).await.unwrap();
        assert!(retry.duplicate, "{expected:?}");
        assert_eq!(retry.positions, original.positions, "{expected:?}");
    }
    assert_eq!(count_events(&pool).await, 2);

    // The same event id in another stream, or mixed with new ids, is a caller bug.
    let elsewhere = store
        .append(&c, &member_stream(), ExpectedVersion::Any, &batch[..1])
        .await;
    assert!(
        matches!(elsewhere, Err(EventStoreError::Duplicate { .. })),
        "{elsewhere:?}"
    );
    let mixed = [batch[0].clone(), event("GoalSet", json!({}))];
    let mixed = store.append(&c, &s, ExpectedVersion::Any, &mixed).await;
    assert!(
        matches!(mixed, Err(EventStoreError::Duplicate { .. })),
        "{mixed:?}"
    );
    assert_eq!(count_events(&pool).await, 2);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn the_database_refuses_to_update_delete_or_truncate_events(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    store
        .append(
            &clinic("north"),
            &member_stream(),
            ExpectedVersion::Any,
            &[event("X", json!({}))],
        )
        .await
        .unwrap();
    for statement in [
        "UPDATE events SET data = '{\"forged\": true}'",
        "DELETE FROM events",
        "TRUNCATE events CASCADE",
    ] {
        let error = sqlx::query(statement).execute(&pool).await.unwrap_err();
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
    assert_eq!(count_events(&pool).await, 1);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn verify_names_the_streams_changed_behind_the_triggers_back(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (north, south) = (clinic("north"), clinic("south"));
    let (edited, deleted, intact) = (member_stream(), member_stream(), member_stream());
    for (c, s) in [
        (&north, &edited),
        (&north, &deleted),
        (&south, &intact),
        (&north, &intact),
    ] {
        for n in 0..3 {
            store
                .append(
                    c,
                    s,
                    ExpectedVersion::Any,
                    &[event("GoalSet", json!({ "n": n }))],
                )
                .await
                .unwrap();
        }
    }
    let clean = store.verify(&Scope::All).await.unwrap();
    assert!(clean.ok());
    assert_eq!((clean.streams_checked, clean.events_checked), (4, 12));

    // A superuser disables the guard and rewrites history.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE events SET data = '{\"n\": 99}' WHERE stream_id = $1 AND version = 2")
        .bind(edited.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("DELETE FROM events WHERE stream_id = $1 AND version = 2")
        .bind(deleted.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE events ENABLE TRIGGER events_no_update_or_delete")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let report = store.verify(&Scope::All).await.unwrap();
    assert!(!report.ok());
    let mut expected = vec![format!("north/{edited}"), format!("north/{deleted}")];
    expected.sort();
    assert_eq!(report.broken_streams, expected);
    let south_only = store.verify(&Scope::Clinic(south)).await.unwrap();
    assert!(south_only.ok());
    assert_eq!(south_only.streams_checked, 1);
}

/// An integrity check runs while the service writes: streams created or appended to during the
/// check are no tampering. (It read the stream heads and the events in two snapshots: a stream
/// that moved in between was named broken.)
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn verify_while_appends_go_on_names_nothing(pool: PgPool) {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    let store = EventStore::new(pool.clone());
    let north = clinic("north");
    let busy = member_stream();
    let appended = Arc::new(AtomicI64::new(0));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (store, north, busy) = (store.clone(), north.clone(), busy.clone());
            let (appended, stopped) = (Arc::clone(&appended), stopped.clone());
            tokio::spawn(async move {
                while !*stopped.borrow() {
                    // A stream of its own, then one every writer shares.
                    for stream in [member_stream(), busy.clone()] {
                        let one = [event("GoalSet", json!({}))];
                        store
                            .append(&north, &stream, ExpectedVersion::Any, &one)
                            .await
                            .unwrap();
                        appended.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    // Checks, each beside the writers, until they have appended a few hundred events.
    let mut checks = 0;
    while appended.load(Ordering::SeqCst) < 300 {
        let report = store.verify(&Scope::All).await.unwrap();
        assert!(report.ok(), "{:?}", report.broken_streams);
        checks += 1;
    }
    stop.send(true).unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    assert!(checks >= 2, "{checks}");
    let last = store.verify(&Scope::All).await.unwrap();
    assert!(last.ok());
    assert_eq!(last.events_checked, appended.load(Ordering::SeqCst));
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn streams_read_from_a_version_and_as_of_a_moment(pool: PgPool) {
    let store = EventStore::new(pool);
    let (c, s) = (clinic("north"), member_stream());
    store
        .append(
            &c,
            &s,
            ExpectedVersion::NoStream,
            &[event("MemberReferred", json!({}))],
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = time::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(20)).await;
    store
        .append(
            &c,
            &s,
            ExpectedVersion::Exactly(1),
            &[
                event("IntakeCompleted", json!({})),
                event("MemberAdmitted", json!({})),
            ],
        )
        .await
        .unwrap();

    let from_two = store.read_stream(&c, &s, 2).await.unwrap();
    let types: Vec<&str> = from_two.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["IntakeCompleted", "MemberAdmitted"]);
    let metadata = &from_two[0].metadata;
    assert_eq!(metadata["actor"], "tester");

    let then = store.read_stream_as_of(&c, &s, between).await.unwrap();
    assert_eq!(then.len(), 1);
    assert_eq!(then[0].event_type, "MemberReferred");
    let now = store
        .read_stream_as_of(&c, &s, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(now.len(), 3);

    // Several streams at once: each cut at the moment, each in version order, one after the
    // other in stream id order; another clinic's stream of the same id is not among them.
    let other = member_stream();
    for (clinic, types) in [
        (&c, ["MemberReferred", "IntakeCompleted"]),
        (&clinic("south"), ["MemberReferred", "MemberReferred"]),
    ] {
        store
            .append(
                clinic,
                &other,
                ExpectedVersion::NoStream,
                &types.map(|t| event(t, json!({}))),
            )
            .await
            .unwrap();
    }
    let streams = [s.clone(), other.clone(), member_stream()];
    let then = store
        .read_streams_as_of(&c, &streams, between)
        .await
        .unwrap();
    assert_eq!(
        then.len(),
        1,
        "the other stream was appended after the moment"
    );
    assert_eq!(then[0].stream_id, s.as_str());
    let now = store
        .read_streams_as_of(&c, &streams, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    let read: Vec<(&str, i64, &str)> = now
        .iter()
        .map(|e| (e.stream_id.as_str(), e.version, e.event_type.as_str()))
        .collect();
    let mut expected = vec![
        (s.as_str(), 1, "MemberReferred"),
        (s.as_str(), 2, "IntakeCompleted"),
        (s.as_str(), 3, "MemberAdmitted"),
        (other.as_str(), 1, "MemberReferred"),
        (other.as_str(), 2, "IntakeCompleted"),
    ];
    expected.sort_by_key(|&(stream, version, _)| (stream, version));
    assert_eq!(read, expected);
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn clinics_never_see_each_others_events(pool: PgPool) {
    let store = EventStore::new(pool);
    let (north, south, s) = (clinic("north"), clinic("south"), member_stream());
    // The same stream id in two clinics is two streams.
    store
        .append(
            &north,
            &s,
            ExpectedVersion::NoStream,
            &[event("A", json!({}))],
        )
        .await
        .unwrap();
    store
        .append(
            &south,
            &s,
            ExpectedVersion::NoStream,
            &[event("B", json!({})), event("C", json!({}))],
        )
        .await
        .unwrap();
    assert_eq!(store.read_stream(&north, &s, 1).await.unwrap().len(), 1);
    assert_eq!(store.stream_version(&south, &s).await.unwrap(), 2);

    let north_log = read_all(&store, &Scope::Clinic(north.clone()), 1).await;
    assert!(north_log.iter().all(|e| e.clinic == "north"));
    assert_eq!(north_log.len(), 1);
    let all = read_all(&store, &Scope::All, 1).await;
    assert_eq!(all.len(), 3);
    let by_position = store
        .read_log_by_position(&Scope::Clinic(south), 0, 10)
        .await
        .unwrap();
    assert_eq!(by_position.len(), 2);
    assert!(by_position.iter().all(|e| e.clinic == "south"));
}

/// Pages through the whole log, `page` events at a time, until it has `at_least` events or
/// ten seconds pass (another database's open transaction can hold the safe horizon back).
async fn read_until(
    store: &EventStore,
    scope: &Scope,
    page: u32,
    at_least: usize,
) -> Vec<clinic_infra::event_store::RecordedEvent> {
    let mut cursor = LogCursor::START;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.len() < at_least && tokio::time::Instant::now() < deadline {
        let next = store.read_log(scope, cursor, page).await.unwrap();
        if next.events.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cursor = next.next;
        seen.extend(next.events);
    }
    seen
}

async fn read_all(
    store: &EventStore,
    scope: &Scope,
    page: u32,
) -> Vec<clinic_infra::event_store::RecordedEvent> {
    let total: i64 = match scope {
        Scope::All => sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(store.pool())
            .await
            .unwrap(),
        Scope::Clinic(c) => sqlx::query_scalar("SELECT count(*) FROM events WHERE clinic = $1")
            .bind(c.as_str())
            .fetch_one(store.pool())
            .await
            .unwrap(),
    };
    read_until(store, scope, page, total as usize).await
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_subscriber_never_skips_an_event_that_commits_late_with_a_lower_position(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let c = clinic("north");
    let (slow, fast) = (member_stream(), member_stream());

    // The slow writer takes its position first and holds its transaction open.
    let mut slow_tx = pool.begin().await.unwrap();
    let slow_event = event("Slow", json!({}));
    // The store's own append statement, run inside a transaction the test keeps open.
    let (_, slow_position): (Option<i64>, Option<Vec<i64>>) =
        sqlx::query_as(include_str!("../src/event_store/sql/append.sql"))
            .bind(c.as_str())
            .bind(slow.as_str())
            .bind("member")
            .bind(None::<i64>)
            .bind(vec![slow_event.event_id])
            .bind(vec!["Slow"])
            .bind(vec![1i32])
            .bind(vec![sqlx::types::Json(json!({}))])
            .bind(vec![sqlx::types::Json(json!({"actor": "tester"}))])
            .bind(vec![vec![0u8; 32]])
            .fetch_one(&mut *slow_tx)
            .await
            .unwrap();
    let slow_position = slow_position.expect("appended");

    // The fast writer takes a higher position and commits.
    let fast_result = store
        .append(&c, &fast, ExpectedVersion::Any, &[event("Fast", json!({}))])
        .await
        .unwrap();
    assert!(fast_result.positions[0] > slow_position[0]);

    // Paging by position alone would now hand out the fast event and move past the slow one.
    let naive = store
        .read_log_by_position(&Scope::All, 0, 10)
        .await
        .unwrap();
    assert_eq!(naive.len(), 1, "the hazard this design avoids");

    // The commit-safe reader hands out nothing the open transaction could still precede.
    let scope = Scope::Clinic(c.clone());
    let early = store.read_log(&scope, LogCursor::START, 10).await.unwrap();
    assert!(early.events.is_empty(), "{:?}", early.events);

    slow_tx.commit().await.unwrap();
    let all = read_until(&store, &scope, 1, 2).await;
    let types: Vec<&str> = all.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["Slow", "Fast"],
        "both, in commit-safe order, neither skipped"
    );
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn appends_notify_listeners(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let mut notifications = Notifications::listen(&pool);
    let result = store
        .append(
            &clinic("north"),
            &member_stream(),
            ExpectedVersion::Any,
            &[event("A", json!({})), event("B", json!({}))],
        )
        .await
        .unwrap();
    let notification = notifications
        .next(Duration::from_secs(10))
        .await
        .expect("a notification within 10 s");
    assert_eq!(notification.clinic, "north");
    assert_eq!(notification.position, result.last_position());
}

/// Every listener of a process shares one LISTEN connection: another process's NOTIFY reaches
/// them all, and five listeners (runners, open dashboards) hold one connection, not five.
#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn listeners_of_a_process_share_one_connection(pool: PgPool) {
    let mut listeners = Vec::new();
    for _ in 0..5 {
        listeners.push(Notifications::listen(&pool));
    }
    let listening = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let mut connections = 0;
    for _ in 0..100 {
        connections = listening().await;
        if connections > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(connections, 1, "one LISTEN for the process");
    // Another process appends (a NOTIFY, no in-memory wake-up): every listener hears it.
    sqlx::query("SELECT pg_notify($1, 'north:42')")
        .bind(NOTIFY_CHANNEL)
        .execute(&pool)
        .await
        .unwrap();
    for listener in &mut listeners {
        let heard = listener.next(Duration::from_secs(10)).await;
        assert_eq!(
            heard.map(|n| (n.clinic, n.position)),
            Some(("north".into(), 42))
        );
    }
    // Once nobody listens, the connection goes.
    drop(listeners);
    for _ in 0..200 {
        connections = listening().await;
        if connections == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(connections, 0, "the LISTEN connection is released");
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn other_processes_are_notified_through_postgres(pool: PgPool) {
    // A plain LISTEN, as another process would have: it sees the NOTIFY, not the in-memory wake.
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool)
        .await
        .unwrap();
    listener.listen(NOTIFY_CHANNEL).await.unwrap();
    let store = EventStore::new(pool.clone());
    let mut last = 0;
    for _ in 0..5 {
        last = store
            .append(
                &clinic("north"),
                &member_stream(),
                ExpectedVersion::Any,
                &[event("A", json!({}))],
            )
            .await
            .unwrap()
            .last_position();
    }
    let mut seen = 0;
    while seen < last {
        let notification = tokio::time::timeout(Duration::from_secs(10), listener.recv())
            .await
            .expect("a NOTIFY within 10 s")
            .unwrap();
        let (clinic, position) = notification.payload().rsplit_once(':').unwrap();
        assert_eq!(clinic, "north");
        seen = position.parse().unwrap();
    }
    assert_eq!(seen, last, "the last NOTIFY names the last append");
}

/// What one racer of the group-commit test asked for, and so what it must be answered.
#[derive(Clone, Copy, Debug)]
enum Ask {
    RightVersion,
    StaleVersion,
    AnyVersion,
    NoStreamButItExists,
    NewStream,
    AnyVersionOfANewStream,
    AVersionOfAMissingStream,
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn concurrent_single_event_appends_share_commits_and_each_gets_its_own_answer(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let clinics = [clinic("north"), clinic("south")];
    // 48 streams, each already at version 1, in two clinics.
    let streams: Vec<(ClinicId, StreamId)> = (0..48)
        .map(|i| (clinics[i % 2].clone(), member_stream()))
        .collect();
    for (c, s) in &streams {
        store
            .append(
                c,
                s,
                ExpectedVersion::NoStream,
                &[event("MemberReferred", json!({}))],
            )
            .await
            .unwrap();
    }

    // Three rounds of 64 racers at once: one per existing stream (the right version, a stale
    // one, any version, or "no stream" though it exists) and 16 on streams that do not exist
    // yet (no stream, any version, or a version it cannot have).
    let on_existing = [
        Ask::RightVersion,
        Ask::StaleVersion,
        Ask::AnyVersion,
        Ask::NoStreamButItExists,
    ];
    let on_new = [
        Ask::NewStream,
        Ask::AnyVersionOfANewStream,
        Ask::AVersionOfAMissingStream,
    ];
    let mut next_version = vec![1u64; streams.len()];
    let mut stored: Vec<(i64, StreamId, usize)> = Vec::new();
    for round in 0..3 {
        let racers: Vec<_> = (0..64)
            .map(|i| {
                let store = store.clone();
                let (ask, c, s) = match streams.get(i) {
                    Some((c, s)) => (on_existing[(i + round) % 4], c.clone(), s.clone()),
                    None => (
                        on_new[(i + round) % 3],
                        clinics[i % 2].clone(),
                        member_stream(),
                    ),
                };
                let expected = match ask {
                    Ask::RightVersion => ExpectedVersion::Exactly(next_version[i]),
                    Ask::StaleVersion => ExpectedVersion::Exactly(next_version[i] - 1),
                    Ask::AnyVersion | Ask::AnyVersionOfANewStream => ExpectedVersion::Any,
                    Ask::NoStreamButItExists | Ask::NewStream => ExpectedVersion::NoStream,
                    Ask::AVersionOfAMissingStream => ExpectedVersion::Exactly(1),
                };
                tokio::spawn(async move {
                    let result = store
                        .append(
                            &c,
                            &s,
                            expected,
                            &[event("GoalSet", json!({"round": round}))],
                        )
                        .await;
                    (i, ask, s, result)
                })
            })
            .collect();
        for racer in racers {
            let (i, ask, stream, result) = racer.await.unwrap();
            match (ask, result) {
                (Ask::NewStream | Ask::AnyVersionOfANewStream, Ok(r)) => {
                    assert_eq!(r.stream_version, 1, "{ask:?}");
                    stored.push((r.positions[0], stream, round));
                }
                (Ask::RightVersion | Ask::AnyVersion, Ok(r)) => {
                    assert!(!r.duplicate);
                    assert_eq!(r.stream_version, next_version[i] + 1);
                    next_version[i] = r.stream_version;
                    stored.push((r.positions[0], stream, round));
                }
                (Ask::StaleVersion, Err(EventStoreError::Conflict { actual, .. })) => {
                    assert_eq!(actual, next_version[i]);
                }
                (Ask::NoStreamButItExists, Err(EventStoreError::Conflict { actual, .. })) => {
                    assert_eq!(actual, next_version[i]);
                }
                (Ask::AVersionOfAMissingStream, Err(EventStoreError::Conflict { actual, .. })) => {
                    assert_eq!(actual, 0);
                }
                (ask, other) => panic!("{ask:?} for racer {i}: {other:?}"),
            }
        }
    }

    // Each answer's position holds that caller's own event.
    for (position, stream, round) in &stored {
        let (stored_stream, stored_round): (String, i64) = sqlx::query_as(
            "SELECT stream_id, (data->>'round')::bigint FROM events WHERE position = $1",
        )
        .bind(position)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            (stored_stream.as_str(), stored_round),
            (stream.as_str(), *round as i64)
        );
    }
    // Nothing was stored for a refused append.
    assert_eq!(
        count_events(&pool).await,
        (streams.len() + stored.len()) as i64
    );
    // Every stream is gapless, every chain holds, and each event's version is the one its
    // append was answered with.
    let gaps: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT clinic, stream_id, max(version) - count(*) AS gap
                                 FROM events GROUP BY clinic, stream_id) g WHERE gap <> 0",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(gaps, 0);
    for (i, (c, s)) in streams.iter().enumerate() {
        assert_eq!(store.stream_version(c, s).await.unwrap(), next_version[i]);
    }
    assert!(store.verify(&Scope::All).await.unwrap().ok());
    // And the racers shared commits: fewer transactions than events.
    let (events, transactions): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT transaction_id) FROM events WHERE type = 'GoalSet'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        transactions < events,
        "{events} events in {transactions} transactions"
    );
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn a_retried_single_event_append_among_others_is_answered_as_the_original(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let c = clinic("north");
    let retried_stream = member_stream();
    let retried = event("MemberReferred", json!({}));
    let original = store
        .append(
            &c,
            &retried_stream,
            ExpectedVersion::NoStream,
            std::slice::from_ref(&retried),
        )
        .await
        .unwrap();

    // The retry (at any version, so that its stream takes it and only the stored id refuses
    // it) races 31 fresh appends: whichever group it lands in fails on that id, and every
    // append of the group must still get its own answer.
    let mut racers = Vec::new();
    for i in 0..32 {
        let store = store.clone();
        let (c, retried_stream, retried) = (c.clone(), retried_stream.clone(), retried.clone());
        racers.push(tokio::spawn(async move {
            if i == 16 {
                store
                    .append(&c, &retried_stream, ExpectedVersion::Any, &[retried])
                    .await
            } else {
                store
                    .append(
                        &c,
                        &member_stream(),
                        ExpectedVersion::NoStream,
                        &[event("MemberReferred", json!({}))],
                    )
                    .await
            }
        }));
    }
    for (i, racer) in racers.into_iter().enumerate() {
        let result = racer.await.unwrap().unwrap();
        if i == 16 {
            assert!(result.duplicate);
            assert_eq!(result.positions, original.positions);
        } else {
            assert!(!result.duplicate);
            assert_eq!(result.stream_version, 1);
        }
    }
    assert_eq!(count_events(&pool).await, 32);
    assert!(store.verify(&Scope::All).await.unwrap().ok());
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn an_append_given_up_while_it_waits_is_never_stored(pool: PgPool) {
    // One connection, held by the test: the first append waits for it holding the store's
    // statement slot, and the others wait in the store's queue.
    let narrow = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(pool.connect_options().as_ref().clone())
        .await
        .unwrap();
    let store = EventStore::new(narrow.clone());
    let c = clinic("north");
    let held = narrow.acquire().await.unwrap();
    let mut running = Vec::new();
    for _ in 0..2 {
        let (store, c) = (store.clone(), c.clone());
        running.push(tokio::spawn(async move {
            append_to_a_new_stream(&store, &c, "GoalSet").await
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let given_up = tokio::time::timeout(
        Duration::from_millis(200),
        append_to_a_new_stream(&store, &c, "GivenUp"),
    )
    .await;
    assert!(given_up.is_err(), "it waited for a statement slot");
    drop(held);
    for append in running {
        append.await.unwrap().unwrap();
    }
    // A later append must not carry the abandoned one with it.
    append_to_a_new_stream(&store, &c, "GoalSet").await.unwrap();
    let abandoned: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE type = 'GivenUp'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(abandoned, 0);
    assert_eq!(count_events(&pool).await, 3);
}

async fn append_to_a_new_stream(
    store: &EventStore,
    c: &ClinicId,
    event_type: &str,
) -> Result<clinic_infra::event_store::AppendResult, EventStoreError> {
    store
        .append(
            c,
            &member_stream(),
            ExpectedVersion::Any,
            &[event(event_type, json!({}))],
        )
        .await
}

/// A transaction holding `streams`' append locks, as a long batch append would: appends to
/// them wait until it ends.
async fn holding_locks(
    pool: &PgPool,
    clinic: &ClinicId,
    streams: &[&StreamId],
) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut holder = pool.begin().await.unwrap();
    for stream in streams {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))")
            .bind(clinic.as_str())
            .bind(stream.as_str())
            .execute(&mut *holder)
            .await
            .unwrap();
    }
    holder
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn appends_go_on_while_others_wait_for_their_streams_lock(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let c = clinic("north");
    // Another transaction holds two streams' locks, as long batch appends would.
    let (x, y) = (member_stream(), member_stream());
    let holder = holding_locks(&pool, &c, &[&x, &y]).await;
    let spawn_append = |stream: StreamId| {
        let (store, c) = (store.clone(), c.clone());
        tokio::spawn(async move {
            store
                .append(
                    &c,
                    &stream,
                    ExpectedVersion::Any,
                    &[event("GoalSet", json!({}))],
                )
                .await
        })
    };
    // X runs alone and waits for its lock; then Y and four others arrive and go as a group,
    // which cannot have Y's lock either.
    let stuck_x = spawn_append(x.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stuck_y = spawn_append(y.clone());
    let others: Vec<_> = (0..4).map(|_| spawn_append(member_stream())).collect();
    let others = tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(others))
        .await
        .expect("appends to other streams did not wait for X's and Y's locks");
    for other in others {
        assert_eq!(other.unwrap().unwrap().stream_version, 1);
    }
    assert!(!stuck_x.is_finished() && !stuck_y.is_finished());

    holder.rollback().await.unwrap();
    assert_eq!(stuck_x.await.unwrap().unwrap().stream_version, 1);
    assert_eq!(stuck_y.await.unwrap().unwrap().stream_version, 1);
    assert_eq!(count_events(&pool).await, 6);
    assert!(store.verify(&Scope::All).await.unwrap().ok());
}

#[sqlx::test(migrator = "clinic_infra::MIGRATOR")]
async fn an_event_is_timed_once_its_stream_is_locked_not_when_its_append_began(pool: PgPool) {
    // An append that waits for its stream's lock must not carry the time it began: a writer
    // that began later but went first would hold an earlier version with a later time, and a
    // read of the stream as of a moment between the two would skip a version. Alone, in a
    // group and in a batch, each append here waits, and its events are timed after the wait.
    let store = EventStore::new(pool.clone());
    let c = clinic("north");
    let (alone, grouped, batched) = (member_stream(), member_stream(), member_stream());
    let mut holder = holding_locks(&pool, &c, &[&alone, &grouped, &batched]).await;
    let spawn_append = |stream: StreamId, events: usize| {
        let (store, c) = (store.clone(), c.clone());
        tokio::spawn(async move {
            let events: Vec<NewEvent> = (0..events).map(|_| event("GoalSet", json!({}))).collect();
            store
                .append(&c, &stream, ExpectedVersion::Any, &events)
                .await
        })
    };
    let stuck_alone = spawn_append(alone.clone(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stuck_grouped = spawn_append(grouped.clone(), 1);
    let others: Vec<_> = (0..3).map(|_| spawn_append(member_stream(), 1)).collect();
    let stuck_batched = spawn_append(batched.clone(), 3);
    futures::future::join_all(others).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let released_at: time::OffsetDateTime = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&mut *holder)
        .await
        .unwrap();
    holder.rollback().await.unwrap();
    for stuck in [stuck_alone, stuck_grouped, stuck_batched] {
        stuck.await.unwrap().unwrap();
    }

    for stream in [&alone, &grouped, &batched] {
        let times: Vec<time::OffsetDateTime> =
            sqlx::query_scalar("SELECT recorded_at FROM events WHERE stream_id = $1")
                .bind(stream.as_str())
                .fetch_all(&pool)
                .await
                .unwrap();
        assert!(!times.is_empty());
        for recorded_at in times {
            assert!(
                recorded_at >= released_at,
                "{stream:?}: recorded at {recorded_at}, its lock released at {released_at}"
            );
        }
    }
    // The chain hashes the time stored.
    assert!(store.verify(&Scope::All).await.unwrap().ok());
}
