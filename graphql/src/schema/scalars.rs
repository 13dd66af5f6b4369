//! Paging: cursors (opaque strings over a numeric position), page sizes and `PageInfo`.

use async_graphql::SimpleObject;

use clinic_infra::read_models;

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

/// A list's page sizes: what `first` defaults to and the most rows one page returns. One
/// value serves both the page a resolver reads and what the page weighs in the complexity
/// limit, so the two cannot disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSizes {
    /// Rows when `first` is not given.
    pub default: u32,
    /// Rows at most, whatever `first` asks for.
    pub max: u32,
}

/// The dashboards' lists (members, groups, follow-ups, flags, outreach) and the access log.
pub const LIST_PAGES: PageSizes = PageSizes {
    default: 50,
    max: read_models::MAX_PAGE_SIZE,
};

/// Event pages (the log, a member's history) and dead letters, which auditors export.
pub const EVENT_PAGES: PageSizes = PageSizes {
    default: 100,
    max: 1000,
};

impl PageSizes {
    /// The page size `first` asks for: defaulted and capped, never negative.
    pub fn of(self, first: Option<i32>) -> Result<u32, ApiError> {
        match first {
            None => Ok(self.default),
            Some(n) => u32::try_from(n)
                .map(|n| n.min(self.max))
                .map_err(|_| ApiError::BadInput("`first` must not be negative".into())),
        }
    }

    /// What a page weighs in the complexity limit: its selection (`child_complexity`) once for
    /// each row it may return, so that a page of 500 members costs a hundred times a page of 5,
    /// and lists nested in each row multiply with it. A negative `first` weighs nothing: it is
    /// refused when the field runs.
    pub fn complexity(self, first: Option<i32>, child_complexity: usize) -> usize {
        let rows = self.of(first).unwrap_or(0);
        crate::schema::weigh(rows as usize, child_complexity)
    }

    /// What a list returned whole weighs: as a page of the most rows.
    pub fn unpaged_complexity(self, child_complexity: usize) -> usize {
        crate::schema::weigh(self.max as usize, child_complexity)
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

    #[test]
    fn page_sizes_default_cap_and_refuse_negatives() {
        assert_eq!(LIST_PAGES.of(None).ok(), Some(50));
        assert_eq!(LIST_PAGES.of(Some(7)).ok(), Some(7));
        assert_eq!(LIST_PAGES.of(Some(i32::MAX)).ok(), Some(500));
        assert!(LIST_PAGES.of(Some(-1)).is_err());
    }

    #[test]
    fn a_page_weighs_its_selection_once_per_row_it_may_return() {
        assert_eq!(LIST_PAGES.complexity(None, 10), 500);
        assert_eq!(LIST_PAGES.complexity(Some(500), 10), 5_000);
        assert_eq!(EVENT_PAGES.complexity(Some(i32::MAX), 10), 10_000);
        assert_eq!(LIST_PAGES.complexity(Some(-5), 10), 0);
        assert_eq!(LIST_PAGES.complexity(Some(0), 10), 0);
        // Capped just past the limit, so sums of many weights cannot wrap around.
        assert_eq!(
            EVENT_PAGES.complexity(None, usize::MAX),
            crate::schema::MAX_COMPLEXITY + 1
        );
    }
}
