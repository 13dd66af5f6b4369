//! Relay-style pages of the lists that grow: keyset cursors over each list's stable order.
//!
//! A cursor is the list's letter and the last row's sort key, so a page costs an index walk
//! from the key on (never an OFFSET that rereads the rows before it) and rows appended
//! meanwhile neither repeat nor shift later pages. Cursors are opaque to clients; a list
//! refuses another list's cursor.

use sqlx::postgres::PgRow;
use sqlx::{Row, ValueRef};
use time::OffsetDateTime;
use uuid::Uuid;

use super::ReadModelError;

/// The most rows one page returns, whatever `first` asks for.
pub const MAX_PAGE_SIZE: u32 = 500;

/// Which page of a list: at most `first` rows after the cursor `after` (from the start
/// without one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PageRequest {
    /// How many rows (at most [`MAX_PAGE_SIZE`]; 0 asks only for the total and whether rows
    /// follow).
    pub first: u32,
    /// The `end_cursor` (or an edge's cursor) of the previous page.
    pub after: Option<String>,
}

impl PageRequest {
    /// The first `first` rows.
    pub fn first(first: u32) -> Self {
        Self { first, after: None }
    }

    /// Rows to return; the statement is asked for one more, which says a next page exists.
    pub(super) fn limit(&self) -> i64 {
        i64::from(self.first.min(MAX_PAGE_SIZE))
    }
}

/// One row of a page and the cursor just after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge<T> {
    /// Pass as `after` to continue after this row.
    pub cursor: String,
    /// The row.
    pub node: T,
}

/// A page of a list in a stable order, Relay-style.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The rows.
    pub edges: Vec<Edge<T>>,
    /// Whether rows follow this page.
    pub has_next_page: bool,
    /// The last row's cursor.
    pub end_cursor: Option<String>,
    /// How many rows the whole list holds (with the same filters).
    pub total_count: i64,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows, each with its sort key (the extra row says a
    /// next page exists).
    pub(super) fn from_rows<K: SortKey>(
        mut rows: Vec<(K, T)>,
        limit: i64,
        prefix: char,
        total_count: i64,
    ) -> Self {
        let has_next_page = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let edges: Vec<Edge<T>> = rows
            .into_iter()
            .map(|(key, node)| Edge {
                cursor: format!("{prefix}{}", key.encode()),
                node,
            })
            .collect();
        Self {
            end_cursor: edges.last().map(|e| e.cursor.clone()),
            has_next_page,
            edges,
            total_count,
        }
    }

    /// The page a page statement returned: up to `limit + 1` rows, each repeating the list's
    /// `total_count`, or, for an empty page, one row with the total and NULL in the `marker`
    /// column. `row` reads a row's sort key and node.
    pub(super) fn from_statement<K: SortKey>(
        rows: &[PgRow],
        limit: i64,
        prefix: char,
        marker: &str,
        mut row: impl FnMut(&PgRow) -> Result<(K, T), ReadModelError>,
    ) -> Result<Self, ReadModelError> {
        let total_count = match rows.first() {
            Some(first) => first.try_get("total_count")?,
            None => 0,
        };
        let mut keyed = Vec::with_capacity(rows.len());
        for r in rows {
            if r.try_get_raw(marker)?.is_null() {
                continue;
            }
            keyed.push(row(r)?);
        }
        Ok(Self::from_rows(keyed, limit, prefix, total_count))
    }
}

/// The key of `prefix`'s list that `after` carries ([`SortKey::before_first`] without one),
/// or [`ReadModelError::InvalidCursor`] for a cursor this list did not hand out.
pub(super) fn parse_after<K: SortKey>(
    prefix: char,
    after: Option<&str>,
) -> Result<K, ReadModelError> {
    match after {
        None => Ok(K::before_first()),
        Some(raw) => raw
            .strip_prefix(prefix)
            .and_then(K::decode)
            .ok_or(ReadModelError::InvalidCursor),
    }
}

/// A list's sort key as its cursors carry it.
pub(super) trait SortKey: Sized {
    fn encode(&self) -> String;
    fn decode(raw: &str) -> Option<Self>;
    /// A key below every row's, for the first page: the statements compare keys plainly
    /// (`key > $n`), which a kept generic plan keeps as an index condition, where
    /// `$n IS NULL OR key > $n` would become a filter.
    fn before_first() -> Self;
}

/// A log position (referral, formation): members, groups, outreach items. Positions start
/// at 1.
impl SortKey for i64 {
    fn before_first() -> Self {
        0
    }

    fn encode(&self) -> String {
        self.to_string()
    }

    fn decode(raw: &str) -> Option<Self> {
        raw.parse().ok().filter(|n| *n >= 0)
    }
}

/// Two log positions (a group's formation, then a roster entry's join): attendance flags.
impl SortKey for (i64, i64) {
    fn before_first() -> Self {
        (0, 0)
    }

    fn encode(&self) -> String {
        format!("{}.{}", self.0.encode(), self.1.encode())
    }

    fn decode(raw: &str) -> Option<Self> {
        let (a, b) = raw.split_once('.')?;
        Some((i64::decode(a)?, i64::decode(b)?))
    }
}

/// A due time (to the microsecond, as stored) and an id: follow-ups. Years outside 1..=9999
/// are refused: PostgreSQL cannot hold some of them, and no stored follow-up falls there.
impl SortKey for (OffsetDateTime, Uuid) {
    /// The first instant of year 1, the earliest a cursor may carry, and the nil id.
    fn before_first() -> Self {
        let year_one = OffsetDateTime::UNIX_EPOCH
            .replace_year(1)
            .expect("year 1 is in range");
        (year_one, Uuid::nil())
    }

    fn encode(&self) -> String {
        let micros = self.0.unix_timestamp_nanos() / 1_000;
        format!("{micros}.{}", self.1.simple())
    }

    fn decode(raw: &str) -> Option<Self> {
        let (micros, id) = raw.split_once('.')?;
        let nanos = micros.parse::<i128>().ok()?.checked_mul(1_000)?;
        let at = OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .filter(|at| (1..=9999).contains(&at.year()))?;
        Some((at, Uuid::try_parse(id).ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_gives_back_the_key_it_was_made_from() {
        let page = Page::from_rows(vec![((3_i64, 17_i64), "a")], 1, 's', 1);
        let cursor = page.end_cursor.expect("one row");
        assert_eq!(
            parse_after::<(i64, i64)>('s', Some(&cursor)).unwrap(),
            (3_i64, 17_i64)
        );

        let due = OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_000).unwrap();
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let page = Page::from_rows(vec![((due, id), ())], 5, 'f', 1);
        assert_eq!(
            parse_after::<(OffsetDateTime, Uuid)>('f', page.end_cursor.as_deref()).unwrap(),
            (due, id)
        );
    }

    #[test]
    fn a_page_says_whether_rows_follow_from_the_extra_row() {
        let page = Page::from_rows(vec![(1_i64, 'a'), (2, 'b'), (3, 'c')], 2, 'm', 9);
        assert!(page.has_next_page);
        assert_eq!(page.edges.len(), 2);
        assert_eq!(page.end_cursor.as_deref(), Some("m2"));
        let last = Page::from_rows(vec![(1_i64, 'a')], 2, 'm', 1);
        assert!(!last.has_next_page);
        let total_only = Page::from_rows(vec![(1_i64, 'a')], 0, 'm', 4);
        assert!(total_only.edges.is_empty() && total_only.has_next_page);
        assert_eq!(total_only.end_cursor, None);
    }

    #[test]
    fn a_list_refuses_cursors_it_did_not_hand_out() {
        for bad in ["g12", "m", "m-1", "mx", "m1.2"] {
            assert!(
                matches!(
                    parse_after::<i64>('m', Some(bad)),
                    Err(ReadModelError::InvalidCursor)
                ),
                "{bad}"
            );
        }
        let before_year_one = "f-62135596800000001.0123456789abcdef0123456789abcdef";
        for bad in [
            "s1",
            "s1.",
            "s.2",
            "s1.-2",
            "f12.not-a-uuid",
            "f.0123",
            before_year_one,
        ] {
            let prefix = bad.chars().next().unwrap();
            let refused = if prefix == 's' {
                parse_after::<(i64, i64)>(prefix, Some(bad)).is_err()
            } else {
                parse_after::<(OffsetDateTime, Uuid)>(prefix, Some(bad)).is_err()
            };
            assert!(refused, "{bad}");
        }
        // Without a cursor a list starts below every key it can hold.
        assert_eq!(parse_after::<i64>('m', None).unwrap(), 0);
        assert_eq!(parse_after::<(i64, i64)>('s', None).unwrap(), (0, 0));
        let year_one = "f-62135596800000000.0123456789abcdef0123456789abcdef";
        let earliest = parse_after::<(OffsetDateTime, Uuid)>('f', Some(year_one)).unwrap();
        let start = parse_after::<(OffsetDateTime, Uuid)>('f', None).unwrap();
        assert_eq!(start, (earliest.0, Uuid::nil()));
    }
}
