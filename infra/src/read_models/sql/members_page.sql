-- A page of a clinic's members in referral order, with the total that match, and each
-- member's attended sessions in the engagement window counted now (no stored flag to go stale).
-- $1 clinic, $2 stage or NULL, $3 at risk or NULL, $4 after this referral position,
-- $5 rows to return, $6 window start (exclusive), $7 window end = now (inclusive),
-- $8 at-risk threshold.
-- Always one row at least: an empty page is one row with a NULL member_id and the total.
-- The page walks the (clinic, referred_position) index and stops after $5 rows.
-- The total, without an at-risk filter, adds up the pipeline board's counters (a handful of
-- rows): the members projection writes them in the same transaction as member_summaries, so
-- in any snapshot they count exactly its rows, per stage. At risk depends on `now`, which no
-- stored counter can follow, so with that filter the total counts member_summaries. Each
-- total is an uncorrelated subquery (an InitPlan), run only if its CASE branch is taken.
WITH page AS (
    SELECT m.member_id, m.name, m.email, m.stage, m.level_of_care, m.primary_counselor,
           m.version, m.consecutive_missed_check_ins, m.last_missed_due_at, m.erased,
           m.referred_at, m.referred_position,
           (SELECT count(*)
              FROM session_attendance a
             WHERE a.clinic = m.clinic AND a.member_id = m.member_id
               AND a.status IN ('present', 'late')
               AND a.held_at > $6 AND a.held_at <= $7) AS attended
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
  FROM (SELECT CASE
                   WHEN $3::boolean IS NULL THEN
                       (SELECT coalesce(sum(c.members), 0)::bigint
                          FROM pipeline_counts c
                         WHERE c.clinic = $1
                           AND ($2::text IS NULL OR c.stage = $2))
                   ELSE
                       (SELECT count(*)
                          FROM member_summaries m
                         WHERE m.clinic = $1
                           AND ($2::text IS NULL OR m.stage = $2)
                           AND $3 = CASE
                                   WHEN m.stage <> 'in_treatment' THEN false
                                   ELSE (SELECT count(*)
                                           FROM session_attendance a
                                          WHERE a.clinic = m.clinic
                                            AND a.member_id = m.member_id
                                            AND a.status IN ('present', 'late')
                                            AND a.held_at > $6 AND a.held_at <= $7) < $8
                               END)
               END AS total_count) t
  LEFT JOIN page p ON true
 ORDER BY p.referred_position
