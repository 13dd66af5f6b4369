-- Planned follow-ups whose day has come by $1, every clinic, oldest first, at most $2.
SELECT clinic, member_id, follow_up_id
  FROM member_follow_ups
 WHERE status = 'planned' AND due_at <= $1
 ORDER BY due_at, clinic, follow_up_id
 LIMIT $2
