-- Members by id (batch loading), each with its attended sessions in the engagement window.
-- $1 clinic, $2 member ids, $3 window start (exclusive), $4 window end = now (inclusive).
SELECT m.member_id, m.name, m.email, m.stage, m.level_of_care, m.primary_counselor, m.version,
       m.consecutive_missed_check_ins, m.last_missed_due_at, m.erased, m.referred_at,
       m.referred_position,
       (SELECT count(*)
          FROM session_attendance a
         WHERE a.clinic = m.clinic AND a.member_id = m.member_id
           AND a.status IN ('present', 'late')
           AND a.held_at > $3 AND a.held_at <= $4) AS attended
  FROM member_summaries m
 WHERE m.clinic = $1 AND m.member_id = ANY ($2)
 ORDER BY m.referred_position
