-- Writes back the sessions a page scheduled, held or cancelled.
INSERT INTO group_sessions (clinic, session_id, group_id, status, starts_at, held_at, topic,
                            duration_minutes, recorded_position)
SELECT *
  FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[],
              $6::timestamptz[], $7::text[], $8::integer[], $9::bigint[])
    ON CONFLICT (clinic, session_id) DO UPDATE
   SET group_id = EXCLUDED.group_id,
       status = EXCLUDED.status,
       starts_at = EXCLUDED.starts_at,
       held_at = EXCLUDED.held_at,
       topic = EXCLUDED.topic,
       duration_minutes = EXCLUDED.duration_minutes,
       recorded_position = EXCLUDED.recorded_position
