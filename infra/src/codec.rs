//! Between the domain's typed events and the store's rows: type name, schema version and JSON
//! payload out; upcasting back in. The one place that knows both shapes, so it is also the
//! crypto-shredding boundary: personal fields ([`StoredEvent::personal_fields`]) are sealed
//! under their member's data key on the way out and opened on the way in.
//!
//! A sealed field is the string `enc:v1:<member>:<base64(nonce || ciphertext || tag)>`, with the
//! event id and field name as associated data (a ciphertext cannot be moved to another event or
//! field). Everything else in `data` stays plain JSON, queryable in SQL. The hash chain covers
//! the stored bytes, so destroying a key never breaks `verify`. A field whose key is destroyed
//! reads as [`ERASED`]; null fields stay null.

use base64::Engine as _;
use clinic_domain::{DecodeError, StoredEvent};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::clinic::ClinicId;
use crate::event_store::{Metadata, NewEvent, RecordedEvent, StreamId};
use crate::keyring::{DataKey, KeySet, Keyring, KeyringError};

/// What a personal field reads as once its member's key is destroyed (or if its ciphertext was
/// altered): the domain accepts any string there, and nothing of the person is left.
pub const ERASED: &str = "(erased)";

const ENVELOPE: &str = "enc:v1:";
const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

/// Why events could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The member keys could not be had.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// A stored event could not be read (unknown type or schema version).
    #[error("a stored event could not be read")]
    Decode(#[source] DecodeError),
    /// An event with personal fields names no member to seal them for (a bug in the domain's
    /// `data_subject`): refused rather than stored in clear.
    #[error("{event_type} has personal fields but no member whose key would seal them")]
    NoDataSubject {
        /// The event's type.
        event_type: &'static str,
    },
}

/// A domain event as a row to append, its personal fields sealed under its member's key (or
/// replaced by [`ERASED`] if that member is erased: never written in clear).
pub async fn encode<E: StoredEvent>(
    keyring: &Keyring,
    clinic: &ClinicId,
    stream: &StreamId,
    event: &E,
    event_id: Uuid,
    metadata: Metadata,
) -> Result<NewEvent, CodecError> {
    let mut row = encode_unsealed(event, event_id, metadata);
    let event_type = event.event_type();
    let fields = E::personal_fields(event_type);
    if fields.is_empty() && row.metadata.request.is_none() {
        return Ok(row);
    }
    let Some(subject) = event
        .data_subject()
        .or_else(|| stream_member(stream, E::CATEGORY))
    else {
        if fields.is_empty() {
            // A request about no member (a group's name, a session's topic): nothing to seal.
            return Ok(row);
        }
        return Err(CodecError::NoDataSubject { event_type });
    };
    let key = keyring.writing_key(clinic, subject).await?;
    seal_fields(&mut row.data, fields, subject, key.as_deref(), event_id);
    // An erased member's request keeps no digest: there is nothing left to compare it with.
    row.metadata.request = match (row.metadata.request.take(), key.as_deref()) {
        (Some(request), Some(key)) => Some(envelope(
            subject,
            key,
            &request,
            &aad(event_id, REQUEST_AAD_FIELD),
        )),
        _ => None,
    };
    Ok(row)
}

/// The request digest a stored event's metadata carries ([`Metadata::request`]), opened; `None`
/// when it has none; [`ERASED`] when its member's key is destroyed (no request's digest is that).
pub async fn request_of(
    keyring: &Keyring,
    recorded: &RecordedEvent,
) -> Result<Option<String>, KeyringError> {
    let Some(stored) = recorded.metadata.get(REQUEST).and_then(Value::as_str) else {
        return Ok(None);
    };
    let keys = keyring
        .reading_keys(keyring.pool(), sealed_subject(stored))
        .await?;
    let aad = aad(recorded.event_id, REQUEST_AAD_FIELD);
    let opened = open_envelope(&keys, stored, &aad).unwrap_or_else(|| stored.to_owned());
    Ok(Some(opened))
}

/// The metadata field of a request digest.
const REQUEST: &str = "request";

/// What names a sealed request digest in its associated data (`<event id>/metadata/request`),
/// beside the data fields' `<event id>/<field>`: no field of `data` has a slash in its name, so
/// a sealed digest and a sealed field can never stand for each other.
const REQUEST_AAD_FIELD: &str = "metadata/request";

/// A domain event as a row WITHOUT sealing its personal fields: what [`encode`] seals, and on its
/// own only for measuring what sealing costs against the same log without it
/// (`DemoOptions::seal` in benchmarks). The service never appends its output unsealed.
pub fn encode_unsealed<E: StoredEvent>(event: &E, event_id: Uuid, metadata: Metadata) -> NewEvent {
    NewEvent {
        event_id,
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        data: event.to_data(),
        metadata,
    }
}

/// The keys the sealed fields of `rows` need, fetched in at most one query on `executor`.
pub async fn keys_for<'e>(
    keyring: &Keyring,
    executor: impl PgExecutor<'e>,
    rows: &[RecordedEvent],
) -> Result<KeySet, KeyringError> {
    keyring.reading_keys(executor, subjects(rows)).await
}

/// [`keys_for`] as the database holds them now ([`Keyring::current_keys`]): for reads that
/// show personal fields to a person, so another process's erasure counts at once.
pub async fn current_keys_for<'e>(
    keyring: &Keyring,
    executor: impl PgExecutor<'e>,
    rows: &[RecordedEvent],
) -> Result<KeySet, KeyringError> {
    keyring.current_keys(executor, subjects(rows)).await
}

/// The members whose keys sealed fields of `rows`.
fn subjects(rows: &[RecordedEvent]) -> impl Iterator<Item = Uuid> + '_ {
    rows.iter().flat_map(|row| sealed_subjects(&row.data))
}

/// A stored row as a domain event, opened with `keys` and upcast to the current schema.
pub fn decode<E: StoredEvent>(keys: &KeySet, recorded: &RecordedEvent) -> Result<E, DecodeError> {
    let schema_version = u16::try_from(recorded.schema_version).unwrap_or(u16::MAX);
    E::from_stored(&recorded.event_type, schema_version, reveal(keys, recorded))
}

/// Rows as domain events, fetching the keys they need first (on the keyring's pool).
pub async fn decode_all<E: StoredEvent>(
    keyring: &Keyring,
    rows: &[RecordedEvent],
) -> Result<Vec<E>, CodecError> {
    let keys = keys_for(keyring, keyring.pool(), rows).await?;
    decode_each(&keys, rows)
}

/// Rows as domain events, opened with `keys`.
pub fn decode_each<E: StoredEvent>(
    keys: &KeySet,
    rows: &[RecordedEvent],
) -> Result<Vec<E>, CodecError> {
    rows.iter()
        .map(|row| decode(keys, row).map_err(CodecError::Decode))
        .collect()
}

/// The row's `data` with its sealed fields opened ([`ERASED`] where the key is gone), for
/// auditors reading the raw log.
pub fn reveal(keys: &KeySet, recorded: &RecordedEvent) -> Value {
    let mut data = recorded.data.clone();
    if let Value::Object(fields) = &mut data {
        for (name, value) in fields.iter_mut() {
            let Value::String(text) = value else { continue };
            if let Some(opened) = open_envelope(keys, text, &aad(recorded.event_id, name)) {
                *value = Value::String(opened);
            }
        }
    }
    data
}

/// A free-text value kept outside the log that may identify the member (the access log's
/// break-glass reason), sealed under `member`'s key with `purpose` as associated data; erasing
/// the member makes it unreadable like their events. [`ERASED`] if the member is erased.
pub async fn seal_text(
    keyring: &Keyring,
    clinic: &ClinicId,
    member: Uuid,
    purpose: &str,
    text: &str,
) -> Result<String, KeyringError> {
    let key = keyring.writing_key(clinic, member).await?;
    Ok(match key {
        Some(key) => envelope(member, &key, text, purpose.as_bytes()),
        None => ERASED.to_owned(),
    })
}

/// [`seal_text`]'s value opened ([`ERASED`] where the key is gone); text that was never
/// sealed is returned as it is.
pub fn open_text(keys: &KeySet, purpose: &str, text: &str) -> String {
    open_envelope(keys, text, purpose.as_bytes()).unwrap_or_else(|| text.to_owned())
}

/// The member whose key sealed `text`, if it is sealed.
pub fn sealed_subject(text: &str) -> Option<Uuid> {
    split_envelope(text).map(|(subject, _)| subject)
}

/// `enc:v1:<member>:<base64>` as the member and the base64 text.
fn split_envelope(text: &str) -> Option<(Uuid, &str)> {
    let (subject, sealed) = text.strip_prefix(ENVELOPE)?.split_once(':')?;
    Some((Uuid::try_parse(subject).ok()?, sealed))
}

fn envelope(subject: Uuid, key: &DataKey, plain: &str, aad: &[u8]) -> String {
    format!(
        "{ENVELOPE}{}:{}",
        subject.simple(),
        BASE64.encode(key.seal(plain.as_bytes(), aad))
    )
}

/// `None` when `text` is not sealed; else its plaintext, or [`ERASED`] where the key is gone
/// (or the ciphertext was altered, which is also logged).
fn open_envelope(keys: &KeySet, text: &str, aad: &[u8]) -> Option<String> {
    let (subject, sealed) = parse_envelope(text)?;
    let key = keys.get(subject);
    let opened = key
        .and_then(|key| key.open(&sealed, aad))
        .and_then(|plain| String::from_utf8(plain).ok());
    if opened.is_none() && key.is_some() {
        tracing::warn!(member = %subject, "a sealed value does not open with its member's key (altered?)");
    }
    Some(opened.unwrap_or_else(|| ERASED.to_owned()))
}

/// The members whose keys sealed fields of `data`.
fn sealed_subjects(data: &Value) -> impl Iterator<Item = Uuid> + '_ {
    data.as_object()
        .into_iter()
        .flat_map(|fields| fields.values())
        .filter_map(|value| value.as_str())
        .filter_map(sealed_subject)
}

fn seal_fields(
    data: &mut Value,
    fields: &[&str],
    subject: Uuid,
    key: Option<&DataKey>,
    event_id: Uuid,
) {
    let Value::Object(object) = data else { return };
    for field in fields {
        let Some(Value::String(plain)) = object.get(*field) else {
            continue;
        };
        let sealed = match key {
            Some(key) => envelope(subject, key, plain, &aad(event_id, field)),
            None => ERASED.to_owned(),
        };
        object.insert((*field).to_owned(), Value::String(sealed));
    }
}

fn parse_envelope(text: &str) -> Option<(Uuid, Vec<u8>)> {
    let (subject, sealed) = split_envelope(text)?;
    Some((subject, BASE64.decode(sealed).ok()?))
}

fn aad(event_id: Uuid, field: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + 1 + field.len());
    aad.extend_from_slice(event_id.as_bytes());
    aad.push(b'/');
    aad.extend_from_slice(field.as_bytes());
    aad
}

/// The member a member stream belongs to (`member-<uuid>`).
fn stream_member(stream: &StreamId, category: &str) -> Option<Uuid> {
    if stream.category() != category || category != "member" {
        return None;
    }
    let (_, id) = stream.as_str().split_once('-')?;
    Uuid::try_parse(id).ok()
}
