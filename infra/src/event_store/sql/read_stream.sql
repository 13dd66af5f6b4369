SELECT position, transaction_id::text::bigint AS transaction_id, clinic, stream_id, version, event_id, type,
       schema_version, data, metadata, recorded_at, prev_hash, hash
  FROM events
 WHERE clinic = $1 AND stream_id = $2 AND version >= $3
 ORDER BY version
