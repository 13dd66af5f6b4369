//! The `members` projection: member streams folded into `member_summaries`,
//! `member_check_ins`, `member_follow_ups` and `pipeline_counts`.
//!
//! Start with [`MemberRows::apply`] (what each event changes); the loading and writing around
//! it are in `store.rs` and `sql/`.

mod fold;
mod store;
#[cfg(test)]
mod tests;

use clinic_domain::{MemberEvent, MemberId};
use sqlx::PgConnection;

use super::{decode_category, ProjectionError};
use crate::event_store::RecordedEvent;
use crate::keyring::Keyring;

pub use fold::{CheckInRow, FollowUpRow, MemberKeys, MemberRow, MemberRows, ERASED_NAME};

/// A member event with its envelope.
pub type MemberEnvelope = super::Envelope<MemberEvent, MemberId>;

/// Decodes the page's member events, loads the rows they touch, folds, writes the changes.
pub(crate) async fn apply(
    conn: &mut PgConnection,
    keyring: &Keyring,
    events: &[RecordedEvent],
) -> Result<(), ProjectionError> {
    let sealed = crate::codec::keys_for(keyring, &mut *conn, events).await?;
    let decoded: Vec<MemberEnvelope> = decode_category(&sealed, events, |stream| {
        MemberId::from_stream_id(stream).ok()
    })?;
    if decoded.is_empty() {
        return Ok(());
    }
    let keys = MemberKeys::of(&decoded);
    let mut rows = store::load(conn, &keys).await?;
    for event in &decoded {
        rows.apply(event)?;
    }
    store::write(conn, &rows).await?;
    // An erased member's key goes with the page, whatever became of the erasure that appended
    // the event (it destroys the key just after appending; a crash in between is repaired
    // here).
    for event in &decoded {
        if matches!(event.event, MemberEvent::MemberErased(_)) {
            let destroyed = keyring
                .destroy_on(&mut *conn, &event.clinic, event.id.as_uuid())
                .await?;
            if destroyed {
                tracing::warn!(member = %event.id, "completed an interrupted erasure: key destroyed");
                keyring.vacuum_soon();
            }
        }
    }
    Ok(())
}
