-- A page of a clinic's members in referral order, with the total that match, and each
-- member's attended sessions in the engagement window counted now (no stored flag to go stale).
-- $1 clinic, $2 stage or NULL, $3 at risk or NULL, $4 after this referral position,
-- $5 rows to return, $6 window start (exclusive), $7 window end = now (inclusive),
-- $8 at-risk threshold.
-- Always one row at least: an empty page is one row with a NULL member_id and the total.
-- The page and the total are two scans of member_summaries with the same filter (not one
-- shared CTE: a CTE used twice is materialised, which sorted the whole clinic for every page;
-- this way the page walks the (clinic, referred_position) index and stops after $5 rows).
WITH page AS (
    SELECT m.member_id, m.referred_position
      FROM member_summaries m
     WHERE m.clinic = $1
       AND ($2::text IS NULL OR m.stage = $2)
       AND ($3::boolean IS NULL OR $3 = CASE
               WHEN m.stage <> 'in_treatment' THEN false
               ELSE (SELECT count(*)
                       FROM session_attendance a
                      WHERE a.clinic = m.clinic AND a.member_id = m.member_id
                        AND a.status IN ('present', 'late')
                        AND a.held_at > $6 AND a.held_at <= $7) < $8
           END)
       AND m.referred_position > $4
     ORDER BY m.referred_position
     LIMIT $5
)
SELECT t.total_count, p.*
  FROM (SELECT count(*) AS total_count
          FROM member_summaries m
         WHERE m.clinic = $1
       AND ($2::text IS NULL OR m.stage = $2)
       AND ($3::boolean IS NULL OR $3 = CASE
               WHEN m.stage <> 'in_treatment' THEN false
               ELSE (SELECT count(*)
                       FROM session_attendance a
                      WHERE a.clinic = m.clinic AND a.member_id = m.member_id
                        AND a.status IN ('present', 'late')
                        AND a.held_at > $6 AND a.held_at <= $7) < $8
           END)) t
  LEFT JOIN LATERAL (
      SELECT m.member_id, m.name, m.email, m.stage, m.level_of_care, m.primary_counselor,
             m.version, m.consecutive_missed_check_ins, m.last_missed_due_at, m.erased,
             m.referred_at, m.referred_position,
             (SELECT count(*)
                FROM session_attendance a
               WHERE a.clinic = m.clinic AND a.member_id = m.member_id
                 AND a.status IN ('present', 'late')
                 AND a.held_at > $6 AND a.held_at <= $7) AS attended
        FROM page
        JOIN member_summaries m ON m.clinic = $1 AND m.member_id = page.member_id
       ORDER BY page.referred_position
  ) p ON true
