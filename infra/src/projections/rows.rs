//! What a fold works on: decoded events with their place in the log ([`Envelope`]), and the
//! rows a page reads and writes, held in memory ([`Table`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeBounds;

use time::OffsetDateTime;

/// A decoded event with the envelope fields a fold needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<E, Id> {
    /// The tenant.
    pub clinic: String,
    /// The stream's entity (the member or group the stream is about).
    pub id: Id,
    /// The event's version in its stream.
    pub version: i64,
    /// Its global position.
    pub position: i64,
    /// When it was recorded.
    pub recorded_at: OffsetDateTime,
    /// The event.
    pub event: E,
}

/// Rows of one table, keyed by clinic and id: those loaded from the database for a page,
/// then changed by the fold. Only changed keys are written back (`None`: delete the row).
///
/// A key the fold reads must have been loaded first (present or known absent); the page's
/// loader collects every key its events name.
#[derive(Debug, Clone, PartialEq)]
pub struct Table<K: Ord, R> {
    rows: BTreeMap<K, Option<R>>,
    changed: BTreeSet<K>,
}

impl<K: Ord, R> Default for Table<K, R> {
    fn default() -> Self {
        Self {
            rows: BTreeMap::new(),
            changed: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Clone, R> Table<K, R> {
    /// Records what the database holds for `key` (`None`: no row).
    pub fn loaded(&mut self, key: K, row: Option<R>) {
        self.rows.insert(key, row);
    }

    /// The row, if there is one.
    pub fn get(&self, key: &K) -> Option<&R> {
        self.rows.get(key).and_then(Option::as_ref)
    }

    /// The row to change, if there is one (marked changed).
    pub fn get_mut(&mut self, key: &K) -> Option<&mut R> {
        let row = self.rows.get_mut(key).and_then(Option::as_mut)?;
        self.changed.insert(key.clone());
        Some(row)
    }

    /// Inserts or replaces the row.
    pub fn put(&mut self, key: K, row: R) {
        self.changed.insert(key.clone());
        self.rows.insert(key, Some(row));
    }

    /// Deletes the row.
    pub fn delete(&mut self, key: &K) {
        self.changed.insert(key.clone());
        self.rows.insert(key.clone(), None);
    }

    /// Present rows whose keys fall in `range`, in key order.
    pub fn range<'a>(
        &'a self,
        range: impl RangeBounds<K> + 'a,
    ) -> impl Iterator<Item = (&'a K, &'a R)> + 'a {
        self.rows
            .range(range)
            .filter_map(|(k, r)| r.as_ref().map(|r| (k, r)))
    }

    /// Every present row, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &R)> {
        self.rows
            .iter()
            .filter_map(|(k, r)| r.as_ref().map(|r| (k, r)))
    }

    /// Changed rows to upsert, in key order.
    pub fn upserts(&self) -> impl Iterator<Item = (&K, &R)> {
        self.changed
            .iter()
            .filter_map(|k| self.rows.get(k).and_then(Option::as_ref).map(|r| (k, r)))
    }

    /// Changed keys whose row is gone, to delete.
    pub fn deletes(&self) -> impl Iterator<Item = &K> {
        self.changed
            .iter()
            .filter(|k| matches!(self.rows.get(*k), Some(None)))
    }
}
