//! The `groups` projection: group streams folded into `group_summaries`, `group_rosters`,
//! `group_sessions` and `session_attendance`.
//!
//! Start with [`GroupRows::apply`] (what each event changes); the loading and writing around
//! it are in `store.rs` and `sql/`.

mod fold;
mod store;
#[cfg(test)]
mod tests;

use clinic_domain::{GroupEvent, GroupId};
use sqlx::PgConnection;

use super::{decode_category, ProjectionError};
use crate::event_store::RecordedEvent;
use crate::keyring::Keyring;

pub use fold::{AttendanceRow, GroupKeys, GroupRow, GroupRows, RosterRow, SessionRow};

/// A group event with its envelope.
pub type GroupEnvelope = super::Envelope<GroupEvent, GroupId>;

/// Decodes the page's group events, loads the rows they touch, folds, writes the changes.
pub(crate) async fn apply(
    conn: &mut PgConnection,
    keyring: &Keyring,
    events: &[RecordedEvent],
) -> Result<(), ProjectionError> {
    let sealed = crate::codec::keys_for(keyring, &mut *conn, events).await?;
    let decoded: Vec<GroupEnvelope> = decode_category(&sealed, events, |stream| {
        GroupId::from_stream_id(stream).ok()
    })?;
    if decoded.is_empty() {
        return Ok(());
    }
    let keys = GroupKeys::of(&decoded);
    let mut rows = store::load(conn, &keys, events, &decoded).await?;
    for event in &decoded {
        rows.apply(event)?;
    }
    store::write(conn, &rows).await
}
