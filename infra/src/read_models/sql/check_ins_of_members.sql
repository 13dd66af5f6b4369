-- The check-ins of several members (batch loading), by member then due time.
SELECT c.member_id, c.check_in_id, c.due_at, c.channel, c.status, c.completed_at,
       c.closed_by_discharge
  FROM member_check_ins c
 WHERE c.clinic = $1 AND c.member_id = ANY ($2)
 ORDER BY c.member_id, c.due_at, c.check_in_id
