//! Between the domain's typed events and the store's rows: type name, schema version and JSON
//! payload out; upcasting back in. The one place that knows both shapes, so it is also where
//! personal fields will be encrypted on the way out (the crypto-shredding boundary).

use clinic_domain::{DecodeError, StoredEvent};
use uuid::Uuid;

use crate::event_store::{Metadata, NewEvent, RecordedEvent};

/// A stored row as a domain event, upcast to the current schema.
pub fn decode<E: StoredEvent>(recorded: &RecordedEvent) -> Result<E, DecodeError> {
    let schema_version = u16::try_from(recorded.schema_version).unwrap_or(u16::MAX);
    E::from_stored(&recorded.event_type, schema_version, recorded.data.clone())
}

/// A domain event as a row to append.
pub fn encode<E: StoredEvent>(event: &E, event_id: Uuid, metadata: Metadata) -> NewEvent {
    NewEvent {
        event_id,
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        data: event.to_data(),
        metadata,
    }
}
