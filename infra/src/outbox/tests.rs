//! Given a member's events, when folded, then these outbox changes: the email rules without a
//! database or a mail server.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use clinic_domain::member::{
    AftercareStarted, CheckInCompleted, CheckInMissed, CheckInScheduled, ConsentGiven,
    ConsentRevoked, FollowUpDue, MemberAdmitted, MemberDetailsChanged, MemberErased,
    MemberReferred, PlannedFollowUp,
};
use clinic_domain::values::{
    AftercarePlan, CheckInChannel, ConsentKind, ConsentScope, Craving, LevelOfCare, Mood,
    ReferralSource,
};
use clinic_domain::{CheckInId, ConsentId, FollowUpId, MemberEvent, MemberId};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::fold::{
    fold_stream, message_id, row_id, send_check, CancelReason, MemberMail, OutboxChange,
    OutboxEnvelope, OutboxRow, SEND_WITHIN,
};
use super::StaffDirectory;
use crate::mailer::EmailKind;

const CLINIC: &str = "north";
const T0: OffsetDateTime = datetime!(2026-03-02 09:00 UTC);

fn ann() -> MemberId {
    MemberId::new(Uuid::from_u128(0xA11))
}

fn consent_id(n: u128) -> ConsentId {
    ConsentId::new(Uuid::from_u128(0xC0 + n))
}

/// Each event recorded a minute after the previous one, from T0.
fn at(version: i64) -> OffsetDateTime {
    T0 + Duration::minutes(version)
}

fn envelopes(events: Vec<MemberEvent>) -> Vec<OutboxEnvelope> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            let version = i as i64 + 1;
            OutboxEnvelope {
                event_id: Uuid::from_u128(0xE000 + version as u128),
                clinic: CLINIC.into(),
                member: ann(),
                version,
                recorded_at: at(version),
                event,
            }
        })
        .collect()
}

fn staff() -> StaffDirectory {
    StaffDirectory::from_entries([("*", "dr-lee", "lee@clinic.example")])
}

/// Given Ann's events, the changes of every event.
fn given(events: Vec<MemberEvent>) -> Vec<OutboxChange> {
    given_with(events, &staff())
}

fn given_with(events: Vec<MemberEvent>, staff: &StaffDirectory) -> Vec<OutboxChange> {
    let stream = envelopes(events);
    let every: BTreeSet<i64> = stream.iter().map(|e| e.version).collect();
    fold_stream(&stream, &every, staff)
}

fn referred(email: Option<&str>) -> MemberEvent {
    MemberReferred {
        member_id: ann(),
        name: "Ann Example".into(),
        email: email.map(Into::into),
        phone: None,
        source: ReferralSource::SelfReferral,
        primary_substance: Some("alcohol".into()),
        referred_at: T0,
    }
    .into()
}

fn consent(n: u128, scope: ConsentScope, expires_at: Option<OffsetDateTime>) -> MemberEvent {
    ConsentGiven {
        consent_id: consent_id(n),
        scope,
        kind: ConsentKind::Standard,
        recipient: "the clinic".into(),
        purpose: scope.default_purpose().into(),
        information: scope.default_information().into(),
        expires_at,
        expires_on: None,
        signed_by: "the member".into(),
        signed_at: T0,
        form_version: "short-form-1".into(),
    }
    .into()
}

fn email_consent(n: u128) -> MemberEvent {
    consent(n, ConsentScope::EmailOutreach, None)
}

fn revoked(n: u128) -> MemberEvent {
    revoked_on(n, T0)
}

fn revoked_on(n: u128, received_at: OffsetDateTime) -> MemberEvent {
    ConsentRevoked {
        consent_id: consent_id(n),
        received_at,
        how_received: "in writing".into(),
    }
    .into()
}

fn admitted() -> MemberEvent {
    MemberAdmitted {
        level_of_care: LevelOfCare::Residential,
        primary_counselor: Some("dr-lee".into()),
        admitted_at: T0,
    }
    .into()
}

fn aftercare() -> MemberEvent {
    AftercareStarted {
        plan: AftercarePlan::AlumniGroup,
        follow_ups: vec![PlannedFollowUp {
            follow_up_id: FollowUpId::new(Uuid::from_u128(0xF7)),
            day_offset: 7,
            due_at: T0 + Duration::days(7),
        }],
        started_at: T0,
    }
    .into()
}

fn follow_up_due() -> MemberEvent {
    FollowUpDue {
        follow_up_id: FollowUpId::new(Uuid::from_u128(0xF7)),
        day_offset: 7,
        due_at: T0 + Duration::days(7),
    }
    .into()
}

fn scheduled(n: u128) -> MemberEvent {
    CheckInScheduled {
        check_in_id: CheckInId::new(Uuid::from_u128(0xC1 + n)),
        due_at: T0,
        channel: CheckInChannel::App,
    }
    .into()
}

fn missed(n: u128) -> MemberEvent {
    CheckInMissed {
        check_in_id: CheckInId::new(Uuid::from_u128(0xC1 + n)),
        due_at: T0,
    }
    .into()
}

fn completed(n: u128) -> MemberEvent {
    CheckInCompleted {
        check_in_id: CheckInId::new(Uuid::from_u128(0xC1 + n)),
        mood: Mood::new(3).unwrap(),
        craving: Craving::new(2).unwrap(),
        used: false,
        completed_at: T0,
    }
    .into()
}

fn erased() -> MemberEvent {
    MemberErased {
        reason: "member request".into(),
        erased_at: T0,
    }
    .into()
}

/// The row `kind` for the event at `version`, to `recipient` under `consent`.
fn row(version: i64, kind: EmailKind, recipient: &str, consent: Option<ConsentId>) -> OutboxChange {
    let event_id = Uuid::from_u128(0xE000 + version as u128);
    let id = row_id(event_id, kind);
    OutboxChange::Enqueue(OutboxRow {
        id,
        clinic: CLINIC.into(),
        event_id,
        event_version: version,
        member_id: ann(),
        kind,
        recipient: recipient.into(),
        consent_id: consent,
        next_attempt_at: at(version),
        // The welcome's window runs from the discharge (the fixture's T0), the rest from when
        // they were recorded (the follow-up fixture falls due after its recording).
        send_before: match kind {
            EmailKind::AftercareWelcome => T0,
            _ => at(version),
        } + SEND_WITHIN,
        message_id: message_id(id),
    })
}

#[test]
fn aftercare_and_each_due_follow_up_email_the_member_under_their_consent() {
    let changes = given(vec![
        referred(Some("ann@example.org")),
        email_consent(1),
        aftercare(),
        follow_up_due(),
    ]);
    assert_eq!(
        changes,
        vec![
            row(
                3,
                EmailKind::AftercareWelcome,
                "ann@example.org",
                Some(consent_id(1))
            ),
            row(
                4,
                EmailKind::FollowUpDue,
                "ann@example.org",
                Some(consent_id(1))
            ),
        ]
    );
}

#[test]
fn without_an_email_consent_or_an_address_nothing_is_queued() {
    assert_eq!(
        given(vec![referred(Some("ann@example.org")), aftercare()]),
        vec![]
    );
    assert_eq!(
        given(vec![
            referred(Some("ann@example.org")),
            consent(1, ConsentScope::FamilyContact, None),
            aftercare(),
        ]),
        vec![]
    );
    assert_eq!(
        given(vec![referred(None), email_consent(1), aftercare()]),
        vec![]
    );
    assert_eq!(
        given(vec![referred(Some("  ")), email_consent(1), aftercare()]),
        vec![]
    );
}

#[test]
fn a_consent_revoked_or_expired_before_the_event_allows_nothing() {
    assert_eq!(
        given(vec![
            referred(Some("ann@example.org")),
            email_consent(1),
            revoked(1),
            aftercare(),
        ]),
        vec![OutboxChange::CancelMemberEmails {
            clinic: CLINIC.into(),
            member_id: ann(),
            before_version: 3,
            reason: CancelReason::ConsentRevoked,
        }]
    );
    // Expired one minute before aftercare was recorded (at version 3).
    assert_eq!(
        given(vec![
            referred(Some("ann@example.org")),
            consent(1, ConsentScope::EmailOutreach, Some(at(2))),
            aftercare(),
        ]),
        vec![]
    );
}

#[test]
fn the_longest_lasting_consent_in_force_is_the_one_recorded() {
    // A newer consent that ends next week would cancel the email when it lapses, while the
    // older one, ending only on revocation, still allows it: the older one is recorded.
    let changes = given(vec![
        referred(Some("ann@example.org")),
        email_consent(1),
        consent(2, ConsentScope::EmailOutreach, Some(T0 + Duration::days(7))),
        aftercare(),
    ]);
    assert_eq!(
        changes,
        vec![row(
            4,
            EmailKind::AftercareWelcome,
            "ann@example.org",
            Some(consent_id(1))
        )]
    );
}

#[test]
fn of_equally_lasting_consents_the_latest_is_the_one_recorded() {
    let changes = given(vec![
        referred(Some("ann@example.org")),
        email_consent(1),
        email_consent(2),
        aftercare(),
    ]);
    assert_eq!(
        changes,
        vec![row(
            4,
            EmailKind::AftercareWelcome,
            "ann@example.org",
            Some(consent_id(2))
        )]
    );
}

#[test]
fn revoking_an_email_consent_cancels_earlier_emails_and_revoking_another_cancels_nothing() {
    let changes = given(vec![
        referred(Some("ann@example.org")),
        email_consent(1),
        consent(2, ConsentScope::FamilyContact, None),
        aftercare(),
        revoked(2),
        revoked(1),
    ]);
    assert_eq!(
        changes,
        vec![
            row(
                4,
                EmailKind::AftercareWelcome,
                "ann@example.org",
                Some(consent_id(1))
            ),
            OutboxChange::CancelMemberEmails {
                clinic: CLINIC.into(),
                member_id: ann(),
                before_version: 6,
                reason: CancelReason::ConsentRevoked,
            },
        ]
    );
}

#[test]
fn the_second_missed_check_in_in_a_row_notifies_the_counselor_once() {
    let changes = given(vec![
        referred(None),
        admitted(),
        scheduled(1),
        scheduled(2),
        scheduled(3),
        missed(1),
        missed(2),
        missed(3),
    ]);
    assert_eq!(
        changes,
        vec![row(
            7,
            EmailKind::OutreachNotice,
            "lee@clinic.example",
            None
        )]
    );
}

#[test]
fn a_completed_check_in_starts_the_count_again() {
    let changes = given(vec![
        referred(None),
        admitted(),
        scheduled(1),
        scheduled(2),
        scheduled(3),
        missed(1),
        completed(2),
        missed(3),
    ]);
    assert_eq!(changes, vec![]);
}

#[test]
fn without_the_counselors_address_outreach_stays_on_the_dashboard() {
    let events = vec![
        referred(Some("ann@example.org")),
        email_consent(1),
        admitted(),
        scheduled(1),
        scheduled(2),
        missed(1),
        missed(2),
    ];
    assert_eq!(
        given_with(events.clone(), &StaffDirectory::default()),
        vec![]
    );
    let elsewhere = StaffDirectory::from_entries([("south", "dr-lee", "lee@south.example")]);
    assert_eq!(given_with(events, &elsewhere), vec![]);
}

#[test]
fn erasure_forgets_the_member_and_queues_nothing_after() {
    let changes = given(vec![
        referred(Some("ann@example.org")),
        email_consent(1),
        erased(),
        aftercare(),
    ]);
    assert_eq!(
        changes,
        vec![OutboxChange::ForgetMember {
            clinic: CLINIC.into(),
            member_id: ann(),
            before_version: 3,
        }]
    );
}

#[test]
fn only_the_events_asked_for_are_emitted() {
    let stream = envelopes(vec![
        referred(Some("ann@example.org")),
        email_consent(1),
        aftercare(),
        follow_up_due(),
    ]);
    let changes = fold_stream(&stream, &BTreeSet::from([4]), &staff());
    assert_eq!(
        changes,
        vec![row(
            4,
            EmailKind::FollowUpDue,
            "ann@example.org",
            Some(consent_id(1))
        )]
    );
}

#[test]
fn row_ids_and_message_ids_are_stable_per_event_and_kind() {
    let event = Uuid::from_u128(7);
    assert_eq!(
        row_id(event, EmailKind::FollowUpDue),
        row_id(event, EmailKind::FollowUpDue)
    );
    assert_ne!(
        row_id(event, EmailKind::FollowUpDue),
        row_id(event, EmailKind::AftercareWelcome)
    );
    let id = row_id(event, EmailKind::FollowUpDue);
    assert_eq!(message_id(id), format!("<outbox-{id}@mail.invalid>"));
}

fn member(events: Vec<MemberEvent>) -> MemberMail {
    MemberMail::from_events(&events)
}

fn details_changed(email: Option<&str>) -> MemberEvent {
    MemberDetailsChanged {
        name: "Ann Example".into(),
        email: email.map(Into::into),
        phone: None,
        changed_at: T0 + Duration::days(1),
    }
    .into()
}

#[test]
fn a_change_of_address_readdresses_the_emails_not_yet_sent_and_its_removal_cancels_them() {
    let changes = given(vec![
        referred(Some("ann@example.org")),
        email_consent(1),
        aftercare(),
        details_changed(Some("ann@new.example.org")),
        follow_up_due(),
        details_changed(None),
    ]);
    assert_eq!(
        changes,
        vec![
            row(
                3,
                EmailKind::AftercareWelcome,
                "ann@example.org",
                Some(consent_id(1))
            ),
            OutboxChange::Readdress {
                clinic: CLINIC.into(),
                member_id: ann(),
                before_version: 4,
                recipient: "ann@new.example.org".into(),
            },
            row(
                5,
                EmailKind::FollowUpDue,
                "ann@new.example.org",
                Some(consent_id(1))
            ),
            OutboxChange::CancelMemberEmails {
                clinic: CLINIC.into(),
                member_id: ann(),
                before_version: 6,
                reason: CancelReason::NoAddress,
            },
        ]
    );
}

#[test]
fn at_send_time_the_recorded_consent_must_still_be_in_force() {
    let now = T0 + Duration::days(1);
    let before = now + Duration::days(1);
    let kind = EmailKind::AftercareWelcome;
    let given = member(vec![referred(Some("ann@example.org")), email_consent(1)]);
    assert_eq!(
        send_check(&given, kind, Some(consent_id(1)), 2, before, now),
        Ok(())
    );

    let revoked = member(vec![
        referred(Some("ann@example.org")),
        email_consent(1),
        revoked(1),
    ]);
    assert_eq!(
        send_check(&revoked, kind, Some(consent_id(1)), 2, before, now),
        Err(CancelReason::ConsentRevoked)
    );

    let expiring = member(vec![
        referred(Some("ann@example.org")),
        consent(1, ConsentScope::EmailOutreach, Some(now)),
    ]);
    assert_eq!(
        send_check(
            &expiring,
            kind,
            Some(consent_id(1)),
            2,
            before,
            now - Duration::SECOND
        ),
        Ok(())
    );
    assert_eq!(
        send_check(&expiring, kind, Some(consent_id(1)), 2, before, now),
        Err(CancelReason::ConsentExpired)
    );
    assert_eq!(
        send_check(&given, kind, Some(consent_id(9)), 2, before, now),
        Err(CancelReason::ConsentRevoked)
    );
}

#[test]
fn a_revocation_dated_ahead_stops_email_from_its_recording() {
    // Recorded at version 3 with a receipt time ten days on (a clock or a hand running fast).
    let ahead = revoked_on(1, T0 + Duration::days(10));
    let revoked = member(vec![
        referred(Some("ann@example.org")),
        email_consent(1),
        ahead.clone(),
    ]);
    let now = T0 + Duration::days(1);
    assert_eq!(
        send_check(
            &revoked,
            EmailKind::FollowUpDue,
            Some(consent_id(1)),
            2,
            now + Duration::DAY,
            now
        ),
        Err(CancelReason::ConsentRevoked)
    );
    // Nor is an email queued under it by an event recorded after it.
    let changes = given(vec![
        referred(Some("ann@example.org")),
        email_consent(1),
        ahead,
        aftercare(),
    ]);
    assert!(
        !changes
            .iter()
            .any(|c| matches!(c, OutboxChange::Enqueue(_))),
        "{changes:?}"
    );
}

#[test]
fn at_send_time_any_email_consent_revoked_since_the_event_stops_it() {
    // Queued at version 4 under consent 1, the longest lasting; then consent 2 is revoked.
    let now_member = member(vec![
        referred(Some("ann@example.org")),
        email_consent(1),
        consent(
            2,
            ConsentScope::EmailOutreach,
            Some(T0 + Duration::days(300)),
        ),
        aftercare(),
        revoked(2),
    ]);
    let (before, now) = (T0 + Duration::days(2), T0 + Duration::days(1));
    let kind = EmailKind::AftercareWelcome;
    assert_eq!(
        send_check(&now_member, kind, Some(consent_id(1)), 4, before, now),
        Err(CancelReason::ConsentRevoked)
    );
    // An email queued after that revocation, under the consent still given, may go.
    assert_eq!(
        send_check(&now_member, kind, Some(consent_id(1)), 5, before, now),
        Ok(())
    );
    // A revocation of another scope says nothing about email.
    let family = member(vec![
        referred(Some("ann@example.org")),
        email_consent(1),
        consent(2, ConsentScope::FamilyContact, None),
        aftercare(),
        revoked(2),
    ]);
    assert_eq!(
        send_check(&family, kind, Some(consent_id(1)), 4, before, now),
        Ok(())
    );
}

#[test]
fn at_send_time_erased_members_and_stale_emails_are_cancelled() {
    let now = T0 + Duration::days(1);
    let gone = member(vec![
        referred(Some("ann@example.org")),
        email_consent(1),
        erased(),
    ]);
    assert_eq!(
        send_check(
            &gone,
            EmailKind::OutreachNotice,
            None,
            2,
            now + Duration::DAY,
            now
        ),
        Err(CancelReason::MemberErased)
    );
    let given = member(vec![referred(Some("ann@example.org")), email_consent(1)]);
    assert_eq!(
        send_check(
            &given,
            EmailKind::FollowUpDue,
            Some(consent_id(1)),
            2,
            now,
            now
        ),
        Err(CancelReason::Stale)
    );
    // Staff notices need no member consent.
    assert_eq!(
        send_check(
            &given,
            EmailKind::OutreachNotice,
            None,
            2,
            now + Duration::DAY,
            now
        ),
        Ok(())
    );
}

#[test]
fn follow_ups_falling_due_late_are_news_of_their_due_day_not_of_their_recording() {
    // A discharge recorded 100 days after it happened: the day-7 follow-up fell due 93 days
    // before it was recorded, and the welcome is about a discharge long past.
    let long_ago = T0 - Duration::days(100);
    let late = vec![
        referred(Some("ann@example.org")),
        email_consent(1),
        AftercareStarted {
            plan: AftercarePlan::AlumniGroup,
            follow_ups: Vec::new(),
            started_at: long_ago,
        }
        .into(),
        FollowUpDue {
            follow_up_id: FollowUpId::new(Uuid::from_u128(0xF7)),
            day_offset: 7,
            due_at: long_ago + Duration::days(7),
        }
        .into(),
    ];
    let mut windows = Vec::new();
    for change in given(late.clone()) {
        match change {
            OutboxChange::Enqueue(row) => windows.push((row.kind, row.send_before)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        windows,
        [
            (EmailKind::AftercareWelcome, long_ago + SEND_WITHIN),
            (
                EmailKind::FollowUpDue,
                long_ago + Duration::days(7) + SEND_WITHIN
            ),
        ]
    );
    // So the worker cancels both as stale instead of mailing them now.
    let now_member = member(late);
    for (kind, send_before) in windows {
        assert_eq!(
            send_check(
                &now_member,
                kind,
                Some(consent_id(1)),
                2,
                send_before,
                at(4)
            ),
            Err(CancelReason::Stale)
        );
    }
}

#[test]
fn a_consent_ending_on_an_event_only_staff_can_date_allows_no_automatic_email() {
    let ending_on = |n: u128, on: &str| -> MemberEvent {
        let MemberEvent::ConsentGiven(mut given) = email_consent(n) else {
            unreachable!()
        };
        given.expires_on = Some(on.into());
        given.into()
    };
    // "Until the end of treatment": the service cannot tell when that was, so the welcome
    // after discharge does not go on its strength.
    assert_eq!(
        given(vec![
            referred(Some("ann@example.org")),
            ending_on(1, "the end of my treatment"),
            aftercare(),
        ]),
        Vec::new()
    );
    // The short form ends only on the member's revocation, which the record shows; and an
    // older consent the record can date still allows the email beside a newer one it cannot.
    for consents in [
        vec![ending_on(1, clinic_domain::consent::SHORT_FORM_EXPIRES_ON)],
        vec![email_consent(1), ending_on(2, "the end of my treatment")],
    ] {
        let mut events = vec![referred(Some("ann@example.org"))];
        events.extend(consents);
        events.push(aftercare());
        let version = events.len() as i64;
        assert_eq!(
            given(events),
            vec![row(
                version,
                EmailKind::AftercareWelcome,
                "ann@example.org",
                Some(consent_id(1))
            )]
        );
    }
}
