//! Paging: cursors (opaque strings over a numeric position), page sizes and `PageInfo`.

use async_graphql::SimpleObject;

use crate::error::ApiError;

/// Encodes a numeric cursor.
pub fn encode(position: i64) -> String {
    position.to_string()
}

/// Decodes a cursor a client sent back: a position or version this API issued, never negative.
pub fn decode(cursor: &str) -> Result<i64, ApiError> {
    cursor
        .parse()
        .ok()
        .filter(|position: &i64| *position >= 0)
        .ok_or_else(|| ApiError::BadInput("the `after` cursor is not one this API issued".into()))
}

/// A page size: `first`, defaulting and capped, never negative.
pub fn page_size(first: Option<i32>, default: i64, max: i64) -> Result<i64, ApiError> {
    match first {
        None => Ok(default),
        Some(n) if n < 0 => Err(ApiError::BadInput("`first` must not be negative".into())),
        Some(n) => Ok(i64::from(n).min(max)),
    }
}

/// Where a page ends (Relay).
#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    /// Whether another page follows.
    pub has_next_page: bool,
    /// The cursor of the page's last edge.
    pub end_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_the_positions_this_api_issues() {
        assert_eq!(decode(&encode(42)).ok(), Some(42));
        assert_eq!(decode(&encode(i64::MAX)).ok(), Some(i64::MAX));
        for foreign in ["-1", "", "abc", "9223372036854775808", "1.5"] {
            assert!(decode(foreign).is_err(), "{foreign:?}");
        }
    }
}
