-- Scheduled check-ins whose due time has passed by $1, every clinic, oldest first, at most $2.
SELECT clinic, member_id, check_in_id
  FROM member_check_ins
 WHERE status = 'scheduled' AND due_at <= $1
 ORDER BY due_at, clinic, check_in_id
 LIMIT $2
