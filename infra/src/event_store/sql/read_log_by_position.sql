-- Position order for auditors; $3 NULL means every clinic.
SELECT position, transaction_id::text::bigint AS transaction_id, clinic, stream_id, version, event_id, type,
       schema_version, data, metadata, recorded_at, prev_hash, hash
  FROM events
 WHERE position > $1
   AND ($3::text IS NULL OR clinic = $3)
 ORDER BY position
 LIMIT $2
