-- Streams from their first event up to a version each ($1 clinics, $2 stream ids, $3 last
-- versions), in stream and version order: for a fold that replays a stream to know its entity
-- at an event of the page (the outbox: the member at each email; the groups projection: the
-- roster on the day a schema-v1 session was held).
SELECT e.position, e.transaction_id::text::bigint AS transaction_id, e.clinic, e.stream_id,
       e.version, e.event_id, e.type, e.schema_version, e.data, e.metadata, e.recorded_at,
       e.prev_hash, e.hash
  FROM unnest($1::text[], $2::text[], $3::bigint[]) AS s(clinic, stream_id, upto)
  JOIN events e ON e.clinic = s.clinic AND e.stream_id = s.stream_id AND e.version <= s.upto
 ORDER BY e.clinic, e.stream_id, e.version
