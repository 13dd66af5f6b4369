-- The streams of one clinic ($1) holding an event of type $2 whose data field $3 is $4, recorded
-- up to and including $5. Planned per call, so a partial index on that type and field serves it
-- (migration 14: MemberJoined's member_id); for any other pair it is a scan of the log.
SELECT DISTINCT stream_id
  FROM events
 WHERE clinic = $1 AND type = $2 AND data ->> $3 = $4 AND recorded_at <= $5
 ORDER BY stream_id
