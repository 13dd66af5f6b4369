-- Writes back the attendance records a page recorded or corrected.
INSERT INTO session_attendance (clinic, session_id, member_id, group_id, held_at, status)
SELECT *
  FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::uuid[], $5::timestamptz[], $6::text[])
    ON CONFLICT (clinic, session_id, member_id) DO UPDATE
   SET group_id = EXCLUDED.group_id,
       held_at = EXCLUDED.held_at,
       status = EXCLUDED.status
