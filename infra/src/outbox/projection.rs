//! The `outbox` projection: member events folded into `outbox` rows by [`fold::changes`],
//! one page of the log at a time, in the runner's transaction (which also moves the
//! projection's checkpoint).
//!
//! For a page holding an event the outbox reacts to, it reads those members' streams up to the
//! page's last event of each (one query), folds each stream with the domain's `evolve`, and
//! writes: new rows with `ON CONFLICT DO NOTHING` (keyed by event id and kind, so a crash or a
//! re-run never creates a second row), then new addresses, then cancellations, then an
//! erasure's forgetting, each limited to rows of earlier events of the member's stream (so a
//! replay never cancels an email a later consent allowed, and a forgotten address is never
//! written back).

use std::collections::{BTreeMap, BTreeSet};

use clinic_domain::{MemberEvent, MemberId};
use sqlx::PgConnection;
use uuid::Uuid;

use super::fold::{self, OutboxChange, OutboxEnvelope};
use super::StaffDirectory;
use crate::event_store::RecordedEvent;
use crate::keyring::{KeySet, Keyring};
use crate::projections::ProjectionError;

/// Applies one page of the log to the outbox.
pub(crate) async fn apply(
    conn: &mut PgConnection,
    keyring: &Keyring,
    events: &[RecordedEvent],
) -> Result<(), ProjectionError> {
    // The members whose page events matter, and those events' versions.
    let mut emit: BTreeMap<(String, String), BTreeSet<i64>> = BTreeMap::new();
    for e in events {
        if e.stream_id.starts_with("member-") && fold::REACTS_TO.contains(&e.event_type.as_str()) {
            emit.entry((e.clinic.clone(), e.stream_id.clone()))
                .or_default()
                .insert(e.version);
        }
    }
    if emit.is_empty() {
        return Ok(());
    }
    let needs_staff = events
        .iter()
        .any(|e| e.event_type == "CheckInMissed" && e.stream_id.starts_with("member-"));
    let staff = if needs_staff {
        load_staff(conn).await?
    } else {
        StaffDirectory::default()
    };

    let rows = crate::projections::load_streams(
        &mut *conn,
        emit.iter().map(|((clinic, stream), versions)| {
            (
                clinic.as_str(),
                stream.as_str(),
                versions.last().copied().unwrap_or(0),
            )
        }),
    )
    .await?;

    let keys = crate::codec::keys_for(keyring, &mut *conn, &rows).await?;
    let mut changes = Vec::new();
    for stream in crate::projections::each_stream(&rows) {
        let key = (stream[0].clinic.clone(), stream[0].stream_id.clone());
        if let Some(versions) = emit.get(&key) {
            let stream: Vec<OutboxEnvelope> = stream
                .iter()
                .map(|row| envelope(&keys, row))
                .collect::<Result<_, _>>()?;
            changes.extend(fold::fold_stream(&stream, versions, &staff));
        }
    }
    write(conn, &changes).await
}

fn envelope(keys: &KeySet, row: &RecordedEvent) -> Result<OutboxEnvelope, ProjectionError> {
    let member =
        MemberId::from_stream_id(&row.stream_id).map_err(|_| ProjectionError::MalformedStream {
            position: row.position,
        })?;
    let event = crate::codec::decode::<MemberEvent>(keys, row).map_err(|source| {
        ProjectionError::Decode {
            position: row.position,
            source,
        }
    })?;
    Ok(OutboxEnvelope {
        event_id: row.event_id,
        clinic: row.clinic.clone(),
        member,
        version: row.version,
        recorded_at: row.recorded_at,
        event,
    })
}

async fn load_staff(conn: &mut PgConnection) -> Result<StaffDirectory, ProjectionError> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT clinic, sub, address FROM outbox_staff_emails")
            .fetch_all(&mut *conn)
            .await?;
    Ok(StaffDirectory::from_entries(
        rows.iter()
            .map(|(c, s, a)| (c.as_str(), s.as_str(), a.as_str())),
    ))
}

/// Inserts first, then re-addresses, then cancels (each reaches only rows of earlier events, so
/// the order of the page is kept whatever the order of the statements), and forgets last: an
/// erasure's forgotten address is never written back.
async fn write(conn: &mut PgConnection, changes: &[OutboxChange]) -> Result<(), ProjectionError> {
    let mut new = NewRows::default();
    let (mut c_clinic, mut c_member, mut c_version, mut c_reason) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut f_clinic, mut f_member, mut f_version) = (Vec::new(), Vec::new(), Vec::new());
    // The last address of each member in the page: an UPDATE joined to two of a row's changes
    // would apply either one, and the later change reaches every row the earlier one does.
    let mut readdressed: BTreeMap<(&str, Uuid), (i64, &str)> = BTreeMap::new();
    for change in changes {
        match change {
            OutboxChange::Enqueue(row) => new.push(row),
            OutboxChange::CancelMemberEmails {
                clinic,
                member_id,
                before_version,
                reason,
            } => {
                c_clinic.push(clinic.as_str());
                c_member.push(member_id.as_uuid());
                c_version.push(*before_version);
                c_reason.push(reason.as_str());
            }
            OutboxChange::Readdress {
                clinic,
                member_id,
                before_version,
                recipient,
            } => {
                let last = readdressed
                    .entry((clinic.as_str(), member_id.as_uuid()))
                    .or_insert((*before_version, recipient.as_str()));
                *last = (*before_version, recipient.as_str()).max(*last);
            }
            OutboxChange::ForgetMember {
                clinic,
                member_id,
                before_version,
            } => {
                f_clinic.push(clinic.as_str());
                f_member.push(member_id.as_uuid());
                f_version.push(*before_version);
            }
        }
    }
    if !new.id.is_empty() {
        sqlx::query(include_str!("sql/insert_rows.sql"))
            .bind(&new.id)
            .bind(&new.clinic)
            .bind(&new.event_id)
            .bind(&new.event_version)
            .bind(&new.member_id)
            .bind(&new.kind)
            .bind(&new.recipient)
            .bind(&new.consent_id)
            .bind(&new.next_attempt_at)
            .bind(&new.send_before)
            .bind(&new.message_id)
            .execute(&mut *conn)
            .await?;
    }
    if !readdressed.is_empty() {
        let (members, addresses): (Vec<_>, Vec<_>) = readdressed.into_iter().unzip();
        let (clinics, member_ids): (Vec<&str>, Vec<Uuid>) = members.into_iter().unzip();
        let (versions, recipients): (Vec<i64>, Vec<&str>) = addresses.into_iter().unzip();
        sqlx::query(include_str!("sql/readdress_member_emails.sql"))
            .bind(&clinics)
            .bind(&member_ids)
            .bind(&versions)
            .bind(&recipients)
            .execute(&mut *conn)
            .await?;
    }
    if !c_clinic.is_empty() {
        sqlx::query(include_str!("sql/cancel_member_emails.sql"))
            .bind(&c_clinic)
            .bind(&c_member)
            .bind(&c_version)
            .bind(&c_reason)
            .execute(&mut *conn)
            .await?;
    }
    if !f_clinic.is_empty() {
        sqlx::query(include_str!("sql/forget_member.sql"))
            .bind(&f_clinic)
            .bind(&f_member)
            .bind(&f_version)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[derive(Default)]
struct NewRows<'a> {
    id: Vec<Uuid>,
    clinic: Vec<&'a str>,
    event_id: Vec<Uuid>,
    event_version: Vec<i64>,
    member_id: Vec<Uuid>,
    kind: Vec<&'static str>,
    recipient: Vec<&'a str>,
    consent_id: Vec<Option<Uuid>>,
    next_attempt_at: Vec<time::OffsetDateTime>,
    send_before: Vec<time::OffsetDateTime>,
    message_id: Vec<&'a str>,
}

impl<'a> NewRows<'a> {
    fn push(&mut self, row: &'a fold::OutboxRow) {
        self.id.push(row.id);
        self.clinic.push(&row.clinic);
        self.event_id.push(row.event_id);
        self.event_version.push(row.event_version);
        self.member_id.push(row.member_id.as_uuid());
        self.kind.push(row.kind.as_str());
        self.recipient.push(&row.recipient);
        self.consent_id.push(row.consent_id.map(|c| c.as_uuid()));
        self.next_attempt_at.push(row.next_attempt_at);
        self.send_before.push(row.send_before);
        self.message_id.push(&row.message_id);
    }
}
