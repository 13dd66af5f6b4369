-- The last event in commit-safe order ($1: a clinic, or NULL for all).
SELECT transaction_id::text::bigint, position
  FROM events
 WHERE ($1::text IS NULL OR clinic = $1)
   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY transaction_id DESC, position DESC
 LIMIT 1
