-- Attendance records a page corrects ($1, $2, $3: clinics, sessions, members), and every
-- record of the sessions it holds again ($4, $5: clinics, sessions).
SELECT a.clinic, a.session_id, a.member_id, a.group_id, a.held_at, a.status
  FROM unnest($1::text[], $2::uuid[], $3::uuid[]) AS k (clinic, session_id, member_id)
  JOIN session_attendance a
    ON a.clinic = k.clinic AND a.session_id = k.session_id AND a.member_id = k.member_id
UNION
SELECT a.clinic, a.session_id, a.member_id, a.group_id, a.held_at, a.status
  FROM unnest($4::text[], $5::uuid[]) AS k (clinic, session_id)
  JOIN session_attendance a ON a.clinic = k.clinic AND a.session_id = k.session_id
