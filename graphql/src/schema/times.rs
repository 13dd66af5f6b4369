//! Times a client gives: within the calendar the service keeps, in UTC.
//!
//! A `DateTime` argument may carry any offset and any year the parser reads. Stored as given,
//! `9999-12-31T23:00:00-05:00` (year 10000 in UTC) stopped the projection that stores it in a
//! timestamp column (the conversion panics, on every replay), and a time before year 1 made
//! every answer showing it fail to serialize. A time outside the window is refused here, before
//! anything is appended to a log that can never drop it, and every time is kept in UTC.

use time::{OffsetDateTime, UtcOffset};

use crate::error::{ApiError, ApiResult};

/// The first year a client may name: treatment records of the living start after it.
pub const FIRST_YEAR: i32 = 1900;
/// The last year a client may name: far past any plan, expiry or follow-up.
pub const LAST_YEAR: i32 = 2199;

/// `at` (the argument `argument`) in UTC, if its UTC year is within [`FIRST_YEAR`] to
/// [`LAST_YEAR`].
pub fn in_calendar(argument: &str, at: OffsetDateTime) -> ApiResult<OffsetDateTime> {
    at.checked_to_offset(UtcOffset::UTC)
        .filter(|utc| (FIRST_YEAR..=LAST_YEAR).contains(&utc.year()))
        .ok_or_else(|| {
            ApiError::BadInput(format!(
                "`{argument}` must be in the years {FIRST_YEAR} to {LAST_YEAR} (UTC)"
            ))
        })
}

/// A time a client gives (as `argument`) for something that already happened; none is now.
/// Five minutes of slack allow for clocks a little ahead.
pub fn not_in_future(argument: &str, at: Option<OffsetDateTime>) -> ApiResult<OffsetDateTime> {
    let now = OffsetDateTime::now_utc();
    match at.map(|at| in_calendar(argument, at)).transpose()? {
        None => Ok(now),
        Some(at) if at <= now + time::Duration::minutes(5) => Ok(at),
        Some(_) => Err(ApiError::BadInput(format!(
            "`{argument}` must not be in the future"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn times_are_kept_in_utc_within_the_calendar() {
        let kept = in_calendar("at", datetime!(2026-11-26 10:00 -05:00)).unwrap();
        assert_eq!(kept, datetime!(2026-11-26 15:00 UTC));
        assert_eq!(kept.offset(), UtcOffset::UTC);
        assert!(in_calendar("at", datetime!(1900-01-01 00:00 UTC)).is_ok());
        assert!(in_calendar("at", datetime!(2199-12-31 23:59 UTC)).is_ok());
    }

    #[test]
    fn times_past_either_end_are_refused_naming_the_argument() {
        for at in [
            datetime!(9999-12-31 23:00 -05:00),
            datetime!(0000-01-01 00:00 +01:00),
            datetime!(2200-01-01 00:00 UTC),
            datetime!(1899-12-31 23:59 UTC),
            // Year 2199 where it was given, 2200 in UTC.
            datetime!(2199-12-31 23:00 -02:00),
        ] {
            let refused = in_calendar("dueAt", at).unwrap_err();
            assert!(refused.message().contains("`dueAt`"), "{at}");
        }
    }

    #[test]
    fn a_past_time_must_also_be_in_the_calendar() {
        assert!(not_in_future("heldAt", Some(datetime!(0001-01-01 00:00 +01:00))).is_err());
        assert!(not_in_future("heldAt", Some(datetime!(2026-01-01 00:00 UTC))).is_ok());
        assert!(not_in_future("heldAt", Some(datetime!(2190-01-01 00:00 UTC))).is_err());
    }
}
