-- The follow-ups of several members (batch loading), by member then due time.
SELECT f.member_id, f.follow_up_id, f.day_offset, f.due_at, f.status, f.outcome, f.completed_at
  FROM member_follow_ups f
 WHERE f.clinic = $1 AND f.member_id = ANY ($2)
 ORDER BY f.member_id, f.due_at, f.follow_up_id
