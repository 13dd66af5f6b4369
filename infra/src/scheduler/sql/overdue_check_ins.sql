-- Check-ins whose due time has passed by $1 and that someone must still mark missed, every
-- clinic, oldest first, at most $2. Left out, as the domain refuses to mark them: check-ins a
-- discharge closed (MemberState::overdue_check_ins) and those of erased members (nothing more
-- is recorded for them). Refused rows left in would come back every tick and, enough of them,
-- fill the batch before the ones that count. The erased flag is looked up per due check-in by
-- primary key (an anti-join was planned as a scan of every member).
SELECT c.clinic, c.member_id, c.check_in_id
  FROM member_check_ins c
 WHERE c.status = 'scheduled' AND NOT c.closed_by_discharge AND c.due_at <= $1
   AND NOT coalesce((SELECT m.erased FROM member_summaries m
                      WHERE m.clinic = c.clinic AND m.member_id = c.member_id), false)
 ORDER BY c.due_at, c.clinic, c.check_in_id
 LIMIT $2
