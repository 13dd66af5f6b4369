-- The staff follow-up list: open follow-ups (no outcome yet) due by $2, by due time, but not
-- an erased member's (the domain records no outcome for them any more, so staff could never
-- close them). $1 clinic.
SELECT f.member_id, f.follow_up_id, f.day_offset, f.due_at, f.status, f.outcome, f.completed_at
  FROM member_follow_ups f
 WHERE f.clinic = $1 AND f.status <> 'completed' AND f.due_at <= $2
   AND NOT coalesce((SELECT m.erased FROM member_summaries m
                      WHERE m.clinic = f.clinic AND m.member_id = f.member_id), false)
 ORDER BY f.due_at, f.follow_up_id
