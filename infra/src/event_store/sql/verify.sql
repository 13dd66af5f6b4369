-- Every event of the scope ($1: a clinic, or NULL for all) in chain order.
SELECT position, transaction_id::text::bigint AS transaction_id, clinic, stream_id, version,
       event_id, type, schema_version, data, metadata, recorded_at, prev_hash, hash
  FROM events
 WHERE $1::text IS NULL OR clinic = $1
 ORDER BY clinic, stream_id, version
