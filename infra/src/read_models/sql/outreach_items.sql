-- Open outreach items: members (not erased) with at least $2 missed check-ins in a row, for
-- one primary counselor ($3) or all (NULL), in referral order. $1 clinic.
SELECT m.member_id, m.name, m.primary_counselor, m.consecutive_missed_check_ins,
       m.last_missed_due_at
  FROM member_summaries m
 WHERE m.clinic = $1
   AND m.consecutive_missed_check_ins >= $2
   AND NOT m.erased
   AND ($3::text IS NULL OR m.primary_counselor = $3)
 ORDER BY m.referred_position
