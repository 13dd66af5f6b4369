//! Tamper evidence: the content digest each writer computes, and the chain step the database
//! applies (documented beside the `events` table in `migrations/*_event_store.sql`).
//!
//! The digest is computed here rather than in SQL because hashing jsonb's text form inside
//! PostgreSQL cost ~10 µs an event, a fifth of the append budget; the chain step (one SHA-256
//! of ~80 bytes) stays in SQL, under the stream's lock, where the previous hash is known.

use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

/// What an event's digest covers.
pub(crate) struct Content<'a> {
    pub clinic: &'a str,
    pub stream_id: &'a str,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub schema_version: i32,
    pub data: &'a Value,
    pub metadata: &'a Value,
}

/// SHA-256 over the content in an unambiguous encoding: length-prefixed text, fixed-width
/// numbers, and canonical JSON (object keys sorted, no insignificant whitespace), so the same
/// stored jsonb always gives the same digest whatever key order it was written in.
pub(crate) fn digest(content: &Content<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    field(content.clinic.as_bytes());
    field(content.stream_id.as_bytes());
    field(content.event_id.as_bytes());
    field(content.event_type.as_bytes());
    field(&content.schema_version.to_be_bytes());
    let mut json = Vec::with_capacity(256);
    canonical_json(content.data, &mut json);
    field(&json);
    json.clear();
    canonical_json(content.metadata, &mut json);
    field(&json);
    hasher.finalize().into()
}

/// The chain step: the hash of version `version`, recorded at `recorded_at`, after `prev`.
pub(crate) fn chain(
    prev: &[u8],
    version: i64,
    recorded_at: OffsetDateTime,
    digest: &[u8],
) -> [u8; 32] {
    let micros = (recorded_at.unix_timestamp_nanos() / 1000) as i64;
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(version.to_be_bytes());
    hasher.update(micros.to_be_bytes());
    hasher.update(digest);
    hasher.finalize().into()
}

/// Writes `value` as JSON with object keys sorted. Independent of serde_json's map order
/// (a dependency enabling `preserve_order` would otherwise change every digest).
fn canonical_json(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(&Value::String(key.clone()), out);
                out.push(b':');
                canonical_json(&map[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        scalar => write_json(scalar, out),
    }
}

fn write_json(scalar: &Value, out: &mut Vec<u8>) {
    // Serialising a string, number, bool or null into a Vec cannot fail.
    serde_json::to_writer(out, scalar).expect("writing a JSON scalar to memory");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let mut out = Vec::new();
        canonical_json(&json!({"b": [{"z": 1, "a": "x"}], "a": null}), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":null,"b":[{"a":"x","z":1}]}"#
        );
    }

    #[test]
    fn any_change_of_content_changes_the_digest() {
        let (data, metadata) = (json!({"n": 1}), json!({"actor": "a"}));
        let base = Content {
            clinic: "north",
            stream_id: "member-1",
            event_id: Uuid::nil(),
            event_type: "GoalSet",
            schema_version: 1,
            data: &data,
            metadata: &metadata,
        };
        let original = digest(&base);
        let other_data = json!({"n": 2});
        assert_ne!(
            original,
            digest(&Content {
                data: &other_data,
                ..base
            })
        );
        assert_ne!(
            original,
            digest(&Content {
                clinic: "south",
                ..base
            })
        );
        assert_ne!(
            original,
            digest(&Content {
                schema_version: 2,
                ..base
            })
        );
        // Shifting bytes between fields does not collide (length prefixes).
        let a = digest(&Content {
            clinic: "ab",
            stream_id: "c",
            ..base
        });
        let b = digest(&Content {
            clinic: "a",
            stream_id: "bc",
            ..base
        });
        assert_ne!(a, b);
    }
}
