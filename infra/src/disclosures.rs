//! The accounting of disclosures (42 CFR 2.24, HIPAA 164.528): every time a part of a
//! member's record was shared with a third party, from the member's own stream, newest first.
//! Read from the log rather than a read model: it is the legal record, and it must show the
//! consent each disclosure relied on as that consent stands (revoked, expired) today.

use clinic_domain::consent::Consent;
use clinic_domain::member::MemberEvent;
use clinic_domain::{DisclosureId, MemberId, MemberState};
use time::OffsetDateTime;

use crate::clinic::ClinicId;
use crate::codec::{self, CodecError};
use crate::event_store::{EventStore, EventStoreError, StreamId};
use crate::keyring::Keyring;

/// One disclosure, with the consent it relied on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisclosureRecord {
    /// The disclosure.
    pub id: DisclosureId,
    /// Whose records.
    pub member: MemberId,
    /// The consent relied on, as it stands now.
    pub consent: Consent,
    /// Who received the records.
    pub recipient: String,
    /// Why.
    pub purpose: String,
    /// What was disclosed.
    pub description: String,
    /// How (fax, secure email, ...).
    pub channel: String,
    /// When.
    pub disclosed_at: OffsetDateTime,
    /// The staff member who disclosed.
    pub disclosed_by: String,
    /// The 42 CFR 2.32 notice that accompanied the disclosure.
    pub notice: String,
}

/// Why the accounting could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AccountingError {
    /// The log could not be read.
    #[error(transparent)]
    Store(#[from] EventStoreError),
    /// The member's events could not be decoded or opened.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// The member's disclosures made at or after `since`, newest first; `None` if no member was
/// referred under this id in `clinic`.
pub async fn accounting(
    store: &EventStore,
    keyring: &Keyring,
    clinic: &ClinicId,
    member: MemberId,
    since: OffsetDateTime,
) -> Result<Option<Vec<DisclosureRecord>>, AccountingError> {
    let stream = StreamId::of("member", member.as_uuid());
    let rows = store.read_stream(clinic, &stream, 1).await?;
    // Shown to a person: the keys as they are now, whatever this process cached.
    let keys = codec::current_keys_for(keyring, keyring.pool(), &rows)
        .await
        .map_err(CodecError::from)?;
    let events: Vec<MemberEvent> = codec::decode_each(&keys, &rows)?;
    let state = MemberState::from_events(&events);
    if state.member().is_none() {
        return Ok(None);
    }
    let mut records: Vec<DisclosureRecord> = events
        .into_iter()
        .filter_map(|event| match event {
            MemberEvent::DisclosureMade(made) if made.disclosed_at >= since => {
                // The domain refuses a disclosure without a known consent, so it is there.
                let consent = state.consent(made.consent_id)?.clone();
                Some(DisclosureRecord {
                    id: made.disclosure_id,
                    member,
                    consent,
                    recipient: made.recipient,
                    purpose: made.purpose,
                    description: made.description,
                    channel: made.channel,
                    disclosed_at: made.disclosed_at,
                    disclosed_by: made.disclosed_by,
                    notice: made.notice,
                })
            }
            _ => None,
        })
        .collect();
    records.sort_by_key(|record| std::cmp::Reverse(record.disclosed_at));
    Ok(Some(records))
}
