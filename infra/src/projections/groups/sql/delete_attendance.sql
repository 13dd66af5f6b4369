-- Removes attendance records a session held again no longer lists.
DELETE FROM session_attendance a
 USING unnest($1::text[], $2::uuid[], $3::uuid[]) AS k (clinic, session_id, member_id)
 WHERE a.clinic = k.clinic AND a.session_id = k.session_id AND a.member_id = k.member_id
