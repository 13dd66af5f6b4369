-- A page of open outreach items: members (not erased) with at least $2 missed check-ins in a
-- row, for one primary counselor ($3) or all (NULL), in referral order, with the total that
-- match. $1 clinic, $4 after this referral position, $5 rows to return. Always one row at
-- least: an empty page is one row with a NULL member_id and the total. The literal `>= 2`
-- repeats the predicate of the partial index member_summaries_outreach_idx so that a generic
-- plan may use it (the domain's threshold, $2, is at least 2: checked where it is bound).
WITH matching AS (
    SELECT m.member_id, m.name, m.primary_counselor, m.consecutive_missed_check_ins,
           m.last_missed_due_at, m.referred_position
      FROM member_summaries m
     WHERE m.clinic = $1
       AND m.consecutive_missed_check_ins >= 2
       AND m.consecutive_missed_check_ins >= $2
       AND NOT m.erased
       AND ($3::text IS NULL OR m.primary_counselor = $3)
)
SELECT t.total_count, p.*
  FROM (SELECT count(*) AS total_count FROM matching) t
  LEFT JOIN LATERAL (
      SELECT * FROM matching WHERE referred_position > $4 ORDER BY referred_position LIMIT $5
  ) p ON true
 ORDER BY p.referred_position
