-- Commit-safe order across every clinic (projections, operators).
SELECT position, transaction_id::text::bigint AS transaction_id, clinic, stream_id, version, event_id, type,
       schema_version, data, metadata, recorded_at, prev_hash, hash
  FROM events
 WHERE (transaction_id, position) > ($1::text::xid8, $2)
   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
 -- Qualified: a bare `transaction_id` would name the bigint output column above, and the sort
 -- could not use events_commit_order_idx (every page would sort the rest of the log).
 ORDER BY events.transaction_id, events.position
 LIMIT $3
