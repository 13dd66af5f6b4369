-- The streams of one clinic ($1) holding an event of type $2 whose data field $3 is $4, recorded
-- up to and including $5. A scan of the clinic's events (no index serves a data field): for
-- auditors' time travel, which is rare, not for dashboards.
SELECT DISTINCT stream_id
  FROM events
 WHERE clinic = $1 AND type = $2 AND data ->> $3 = $4 AND recorded_at <= $5
 ORDER BY stream_id
