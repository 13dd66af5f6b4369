-- Where the event ids of a refused append are stored, if anywhere, and the stream's version:
-- tells a retried request (every id stored by one append to this stream) from a conflict.
SELECT array_agg(e.position ORDER BY e.version) AS positions,
       coalesce(bool_and(e.clinic = $1 AND e.stream_id = $2), false) AS same_stream,
       (SELECT s.version FROM streams s WHERE s.clinic = $1 AND s.stream_id = $2)
           AS stream_version
  FROM events e
 WHERE e.event_id = ANY ($3::uuid[])
