//! Which emails a member's events call for, and whether one may still go: pure functions over
//! the domain's [`MemberState`], read like the rules in DOMAIN.md ("Email").
//!
//! - `AftercareStarted`: a welcome-to-aftercare email to the member;
//! - `FollowUpDue`: an alumni follow-up email to the member;
//! - the second `CheckInMissed` in a row: an outreach notice to the primary counselor, if the
//!   staff directory has their address (otherwise the dashboard item is all there is);
//! - a member email only with an `email_outreach` consent in force when the event was
//!   recorded and an address on file; the row records that consent;
//! - `ConsentRevoked` (of an `email_outreach` consent) cancels every pending email to the
//!   member; `MemberErased` cancels everything pending for the member and forgets the address;
//! - `MemberDetailsChanged` sends the member's emails not yet sent to their new address, or
//!   cancels them (`no_address`) when they have none any more. The worker reads no address
//!   from the log (it holds no member key), so an email it sends before the projection has
//!   applied the change still goes to the old address;
//! - at send time ([`send_check`]): the row's consent must still be in force (not revoked, not
//!   expired), no `email_outreach` consent revoked since the row's event, the member not
//!   erased, the email not stale. The worker applies this itself, so a revocation stops the
//!   email even while the projection that cancels rows is behind.

use std::collections::BTreeSet;

use clinic_domain::member::ConsentRevoked;
use clinic_domain::values::ConsentScope;
use clinic_domain::{ConsentId, MemberEvent, MemberId, MemberState};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::StaffDirectory;
use crate::mailer::EmailKind;

/// How long after what it is about happened (the discharge, the follow-up's due day; for the
/// rest, its event's recording) an email may still go out; later it is cancelled as stale (a
/// replay of an old log, a long outage, or a discharge recorded long after the fact never mails
/// news of long ago).
pub const SEND_WITHIN: Duration = Duration::days(14);

/// The namespace of outbox row ids (UUID v5 of `<event id>/<kind>`).
const ROW_NAMESPACE: Uuid = Uuid::from_u128(0x6f75_7462_6f78_4000_8000_636c_696e_6963);

/// A member event with what the outbox needs of its envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEnvelope {
    /// The event's id: with the email's kind, the outbox row's key.
    pub event_id: Uuid,
    /// The tenant.
    pub clinic: String,
    /// The member whose stream it is.
    pub member: MemberId,
    /// Its version in the member's stream.
    pub version: i64,
    /// When it was recorded: consent is checked at this moment.
    pub recorded_at: OffsetDateTime,
    /// The event.
    pub event: MemberEvent,
}

/// The member as the outbox reads them: the domain's state (which holds the address on file,
/// as the referral or the last change of details gave it; gone once erased).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberMail {
    state: MemberState,
    /// Events folded: the version of the last one, as a stream is folded from version 1 and
    /// has no gaps.
    version: i64,
    /// The version of the last `ConsentRevoked` of an `email_outreach` consent.
    outreach_revoked_at_version: Option<i64>,
}

impl MemberMail {
    /// Folds events from the start of the stream.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a MemberEvent>) -> Self {
        events.into_iter().fold(Self::default(), Self::evolve)
    }

    /// Applies one event.
    #[must_use]
    pub fn evolve(mut self, event: &MemberEvent) -> Self {
        self.version += 1;
        if let MemberEvent::ConsentRevoked(revoked) = event {
            if revokes_outreach(&self.state, revoked) {
                self.outreach_revoked_at_version = Some(self.version);
            }
        }
        self.state = self.state.evolve(event);
        self
    }

    /// Whether an `email_outreach` consent was revoked after the event at `version`: the
    /// member said no to email since, whichever consent an email queued then relied on.
    pub fn outreach_revoked_after(&self, version: i64) -> bool {
        self.outreach_revoked_at_version
            .is_some_and(|revoked| revoked > version)
    }

    /// The domain's view of the member.
    pub fn state(&self) -> &MemberState {
        &self.state
    }

    /// The member's address now, if one is on file (the state forgets it at an erasure).
    pub fn email(&self) -> Option<&str> {
        self.state.email().map(str::trim).filter(|e| !e.is_empty())
    }
}

/// Why a pending email will not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// The member revoked their `email_outreach` consent.
    ConsentRevoked,
    /// The consent that allowed it expired before it could be sent.
    ConsentExpired,
    /// The member's personal data was erased.
    MemberErased,
    /// Not sent within [`SEND_WITHIN`] of its event.
    Stale,
    /// The member has no email address on file any more (a change of their details removed
    /// it after the email was queued).
    NoAddress,
}

impl CancelReason {
    /// The stored name (`outbox.cancel_reason`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ConsentRevoked => "consent_revoked",
            Self::ConsentExpired => "consent_expired",
            Self::MemberErased => "member_erased",
            Self::Stale => "stale",
            Self::NoAddress => "no_address",
        }
    }
}

/// A new `outbox` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// [`row_id`] of the event and kind.
    pub id: Uuid,
    /// The tenant.
    pub clinic: String,
    /// The causing event.
    pub event_id: Uuid,
    /// Its version in the member's stream.
    pub event_version: i64,
    /// The member it is about.
    pub member_id: MemberId,
    /// Which email.
    pub kind: EmailKind,
    /// Where it goes.
    pub recipient: String,
    /// The consent that allows it (member emails only).
    pub consent_id: Option<ConsentId>,
    /// Due from (the event's time).
    pub next_attempt_at: OffsetDateTime,
    /// Cancelled as stale if not sent by then.
    pub send_before: OffsetDateTime,
    /// [`message_id`] of the row.
    pub message_id: String,
}

/// What one event changes in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxChange {
    /// A new email (inserted once: a row with its id already there is left alone).
    Enqueue(OutboxRow),
    /// Cancel the member's pending emails to the member (not staff notices) caused by events
    /// before `before_version` of their stream.
    CancelMemberEmails {
        /// The tenant.
        clinic: String,
        /// The member.
        member_id: MemberId,
        /// The version of the cancelling event.
        before_version: i64,
        /// Why.
        reason: CancelReason,
    },
    /// The member's address changed: their emails to them not yet sent (pending, or dead and
    /// so requeueable) caused by events before `before_version` go to `recipient` instead.
    Readdress {
        /// The tenant.
        clinic: String,
        /// The member.
        member_id: MemberId,
        /// The version of `MemberDetailsChanged`.
        before_version: i64,
        /// The address now on file.
        recipient: String,
    },
    /// The member was erased: cancel everything pending for them and forget their address on
    /// rows of events before `before_version`.
    ForgetMember {
        /// The tenant.
        clinic: String,
        /// The member.
        member_id: MemberId,
        /// The version of `MemberErased`.
        before_version: i64,
    },
}

/// The outbox row id of the email `kind` caused by `event_id`: the same in every process and
/// replay.
pub fn row_id(event_id: Uuid, kind: EmailKind) -> Uuid {
    Uuid::new_v5(
        &ROW_NAMESPACE,
        format!("{event_id}/{}", kind.as_str()).as_bytes(),
    )
}

/// The Message-ID of the row's email: stable, so a resend after an unknown outcome is
/// recognisably the same email. Its domain is neutral: a header is as readable as the subject,
/// and a clinic's id may say what kind of clinic it is.
pub fn message_id(row_id: Uuid) -> String {
    format!("<outbox-{row_id}@mail.invalid>")
}

/// The changes `e` calls for, given `after`: the member folded up to and including `e`.
pub fn changes(
    after: &MemberMail,
    e: &OutboxEnvelope,
    staff: &StaffDirectory,
) -> Vec<OutboxChange> {
    let state = after.state();
    // What the email is about happened then: its window runs from there (a backdated discharge,
    // or follow-ups falling due late after a scheduler outage, are not news weeks later).
    let happened_at = match &e.event {
        MemberEvent::AftercareStarted(started) => started.started_at,
        MemberEvent::FollowUpDue(due) => due.due_at,
        _ => e.recorded_at,
    }
    .min(e.recorded_at);
    let enqueue = |kind: EmailKind, recipient: &str, consent_id: Option<ConsentId>| {
        let id = row_id(e.event_id, kind);
        OutboxChange::Enqueue(OutboxRow {
            id,
            clinic: e.clinic.clone(),
            event_id: e.event_id,
            event_version: e.version,
            member_id: e.member,
            kind,
            recipient: recipient.to_owned(),
            consent_id,
            next_attempt_at: e.recorded_at,
            send_before: happened_at + SEND_WITHIN,
            message_id: message_id(id),
        })
    };
    let member_email = |kind: EmailKind| {
        let consent = state.consent_for_outreach(ConsentScope::EmailOutreach, e.recorded_at)?;
        let email = after.email()?;
        Some(enqueue(kind, email, Some(consent.id)))
    };
    match &e.event {
        MemberEvent::AftercareStarted(_) => member_email(EmailKind::AftercareWelcome)
            .into_iter()
            .collect(),
        MemberEvent::FollowUpDue(_) => member_email(EmailKind::FollowUpDue).into_iter().collect(),
        MemberEvent::CheckInMissed(_) if state.consecutive_missed_check_ins() == 2 => state
            .primary_counselor()
            .and_then(|counselor| staff.address_of(&e.clinic, counselor))
            .map(|address| enqueue(EmailKind::OutreachNotice, address, None))
            .into_iter()
            .collect(),
        MemberEvent::ConsentRevoked(revoked) if revokes_outreach(state, revoked) => {
            vec![OutboxChange::CancelMemberEmails {
                clinic: e.clinic.clone(),
                member_id: e.member,
                before_version: e.version,
                reason: CancelReason::ConsentRevoked,
            }]
        }
        MemberEvent::MemberDetailsChanged(_) => vec![match after.email() {
            Some(address) => OutboxChange::Readdress {
                clinic: e.clinic.clone(),
                member_id: e.member,
                before_version: e.version,
                recipient: address.to_owned(),
            },
            None => OutboxChange::CancelMemberEmails {
                clinic: e.clinic.clone(),
                member_id: e.member,
                before_version: e.version,
                reason: CancelReason::NoAddress,
            },
        }],
        MemberEvent::MemberErased(_) => vec![OutboxChange::ForgetMember {
            clinic: e.clinic.clone(),
            member_id: e.member,
            before_version: e.version,
        }],
        _ => Vec::new(),
    }
}

/// Whether `revoked` revokes one of `state`'s `email_outreach` consents: the member said no to
/// email.
fn revokes_outreach(state: &MemberState, revoked: &ConsentRevoked) -> bool {
    state
        .consent(revoked.consent_id)
        .is_some_and(|c| c.scope == ConsentScope::EmailOutreach)
}

/// Folds one member's stream (in version order, from version 1) and collects the changes of
/// the events whose versions are in `emit`.
pub fn fold_stream<'a>(
    stream: impl IntoIterator<Item = &'a OutboxEnvelope>,
    emit: &BTreeSet<i64>,
    staff: &StaffDirectory,
) -> Vec<OutboxChange> {
    let mut mail = MemberMail::default();
    let mut out = Vec::new();
    for e in stream {
        mail = mail.evolve(&e.event);
        if emit.contains(&e.version) {
            out.extend(changes(&mail, e, staff));
        }
    }
    out
}

/// The event types [`changes`] reacts to: the projection reads members' streams only for
/// pages that hold one of them.
pub const REACTS_TO: &[&str] = &[
    "AftercareStarted",
    "FollowUpDue",
    "CheckInMissed",
    "ConsentRevoked",
    "MemberDetailsChanged",
    "MemberErased",
];

/// Whether an email due to go before `send_before` is too late to go `now`.
pub fn is_stale(send_before: OffsetDateTime, now: OffsetDateTime) -> bool {
    now >= send_before
}

/// Whether a pending email may go now, given the member as they are now: `Err` says why it is
/// cancelled instead. Member emails need the consent the row recorded to be in force `now` and
/// unrevoked, and no `email_outreach` revocation after the row's event (at `event_version`).
pub fn send_check(
    now_member: &MemberMail,
    kind: EmailKind,
    consent_id: Option<ConsentId>,
    event_version: i64,
    send_before: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), CancelReason> {
    if now_member.state().erased() {
        return Err(CancelReason::MemberErased);
    }
    if is_stale(send_before, now) {
        return Err(CancelReason::Stale);
    }
    if !kind.to_member() {
        return Ok(());
    }
    if let Some(lapsed) = consent_lapsed(now_member, consent_id, now) {
        return Err(lapsed);
    }
    if now_member.outreach_revoked_after(event_version) {
        return Err(CancelReason::ConsentRevoked);
    }
    Ok(())
}

/// Why the consent a row recorded no longer allows email `now`, if it does not: revoked (on
/// record, whatever its date) or expired. Only then are the other emails it allowed cancelled
/// with the row: another consent's revocation stops the row, not what this consent allows.
pub fn consent_lapsed(
    now_member: &MemberMail,
    consent_id: Option<ConsentId>,
    now: OffsetDateTime,
) -> Option<CancelReason> {
    let Some(consent) = consent_id.and_then(|id| now_member.state().consent(id)) else {
        return Some(CancelReason::ConsentRevoked);
    };
    if consent.revoked_at.is_none() && consent.in_force_at(now) {
        None
    } else if consent.expires_at.is_some_and(|expires| expires <= now)
        && consent.revoked_at.is_none_or(|revoked| revoked > now)
    {
        Some(CancelReason::ConsentExpired)
    } else {
        Some(CancelReason::ConsentRevoked)
    }
}
