-- The sessions a page's events name ($1, $2: clinics and session ids).
SELECT s.clinic, s.session_id, s.group_id, s.status, s.starts_at, s.held_at, s.topic,
       s.duration_minutes, s.recorded_position
  FROM unnest($1::text[], $2::uuid[]) AS k (clinic, session_id)
  JOIN group_sessions s ON s.clinic = k.clinic AND s.session_id = k.session_id
