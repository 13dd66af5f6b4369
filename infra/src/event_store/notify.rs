//! Live notification: each append `NOTIFY`s [`NOTIFY_CHANNEL`] with `<clinic>:<position>`, so
//! subscribers wake at once instead of polling. Notifications are hints, not data: they can be
//! lost while a connection is down, so every subscriber also polls on a timer.

use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;

use super::EventStoreError;

/// The channel appends notify.
pub const NOTIFY_CHANNEL: &str = "clinic_events";

/// One append's notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventNotification {
    /// The clinic appended to.
    pub clinic: String,
    /// The position of the append's last event.
    pub position: i64,
}

/// A listening connection.
pub struct Notifications {
    listener: PgListener,
}

impl Notifications {
    /// Starts listening on a connection of its own.
    pub async fn listen(pool: &PgPool) -> Result<Self, EventStoreError> {
        let mut listener = PgListener::connect_with(pool)
            .await
            .map_err(EventStoreError::Database)?;
        listener
            .listen(NOTIFY_CHANNEL)
            .await
            .map_err(EventStoreError::Database)?;
        Ok(Self { listener })
    }

    /// The next notification, or `None` when `timeout` passes first (the caller polls then).
    /// A lost connection is re-established on the next call.
    pub async fn next(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<EventNotification>, EventStoreError> {
        match tokio::time::timeout(timeout, self.listener.recv()).await {
            Err(_elapsed) => Ok(None),
            Ok(Err(error)) => Err(EventStoreError::Database(error)),
            Ok(Ok(notification)) => Ok(parse(notification.payload())),
        }
    }
}

fn parse(payload: &str) -> Option<EventNotification> {
    let (clinic, position) = payload.rsplit_once(':')?;
    Some(EventNotification {
        clinic: clinic.to_owned(),
        position: position.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_clinic_and_position() {
        assert_eq!(
            parse("north:42"),
            Some(EventNotification {
                clinic: "north".into(),
                position: 42
            })
        );
        assert_eq!(parse("garbage"), None);
    }
}
