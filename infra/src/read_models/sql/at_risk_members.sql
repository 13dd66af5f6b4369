-- Members in treatment who attended fewer than $4 sessions in the window ($2, $3], in
-- referral order. $1 clinic.
SELECT *
  FROM (SELECT m.member_id, m.name, m.email, m.stage, m.level_of_care, m.primary_counselor,
               m.version, m.consecutive_missed_check_ins, m.last_missed_due_at, m.erased,
               m.referred_at, m.referred_position,
               (SELECT count(*)
                  FROM session_attendance a
                 WHERE a.clinic = m.clinic AND a.member_id = m.member_id
                   AND a.status IN ('present', 'late')
                   AND a.held_at > $2 AND a.held_at <= $3) AS attended
          FROM member_summaries m
         WHERE m.clinic = $1 AND m.stage = 'in_treatment') engaged
 WHERE attended < $4
 ORDER BY referred_position
