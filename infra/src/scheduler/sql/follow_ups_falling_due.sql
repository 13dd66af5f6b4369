-- Planned follow-ups whose day has come by $1, every clinic, oldest first, at most $2; not
-- those of erased members (the domain records nothing more for them, see overdue_check_ins.sql).
SELECT f.clinic, f.member_id, f.follow_up_id
  FROM member_follow_ups f
 WHERE f.status = 'planned' AND f.due_at <= $1
   AND NOT coalesce((SELECT m.erased FROM member_summaries m
                      WHERE m.clinic = f.clinic AND m.member_id = f.member_id), false)
 ORDER BY f.due_at, f.clinic, f.follow_up_id
 LIMIT $2
