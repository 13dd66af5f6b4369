-- Streams ($2 stream ids) of one clinic ($1) as they stood at $3: their events recorded up to
-- and including that moment, in stream and version order.
SELECT position, transaction_id::text::bigint AS transaction_id, clinic, stream_id, version, event_id, type,
       schema_version, data, metadata, recorded_at, prev_hash, hash
  FROM events
 WHERE clinic = $1 AND stream_id = ANY($2) AND recorded_at <= $3
 ORDER BY stream_id, version
