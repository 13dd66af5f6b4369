-- $1 clinic, $2 member, window ($3, $4].
SELECT count(*)
  FROM session_attendance
 WHERE clinic = $1 AND member_id = $2 AND status IN ('present', 'late')
   AND held_at > $3 AND held_at <= $4
