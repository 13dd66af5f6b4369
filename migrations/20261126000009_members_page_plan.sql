-- The member-list page as a function whose plan is made once per session.
--
-- Why: the page statement is planned on every call when sent as a prepared statement
-- (PostgreSQL's estimate for a generic plan with `LIMIT $n` is far above the custom one, so
-- it never switches), and planning cost as much as running it: measured on the API
-- benchmark's clinic (10,000 members), 0.27 ms to plan and 0.30 ms to run; with the plan kept,
-- pgbench ran the page 1.57x as often (README "Benchmarks"). The settings below hold only
-- while this function runs:
-- - plan_cache_mode = force_generic_plan: the plan is made once per session and kept;
-- - enable_seqscan = off: the kept plan walks indexes even if it was made while the tables
--   were nearly empty (a fresh clinic, a rebuild in progress), so it stays right as they
--   grow. Every access below has an index made for it.
--
-- Parameters: $1 clinic, $2 stage or NULL, $3 at risk or NULL, $4 after this referral
-- position, $5 rows to return, $6 window start (exclusive), $7 window end = now (inclusive),
-- $8 at-risk threshold. Returns the page with each member's attended sessions in the window
-- counted now (no stored flag to go stale), and the total that match on every row. Always one
-- row at least: an empty page is one row with a NULL member_id and the total. Rows come in no
-- promised order: callers sort by referred_position.
--
-- The page walks the (clinic, referred_position) index and stops after $5 rows. The total,
-- without an at-risk filter, adds up the pipeline board's counters (a handful of rows): the
-- members projection writes them in the same transaction as member_summaries, so in any
-- snapshot they count exactly its rows, per stage. At risk depends on `now`, which no stored
-- counter can follow, so with that filter the total counts member_summaries. Each total is an
-- uncorrelated subquery (an InitPlan), run only if its CASE branch is taken.
CREATE FUNCTION members_page(text, text, boolean, bigint, bigint, timestamptz, timestamptz,
                             bigint)
RETURNS TABLE (total_count bigint, member_id uuid, name text, email text, stage text,
               level_of_care text, primary_counselor text, version bigint,
               consecutive_missed_check_ins integer, last_missed_due_at timestamptz,
               erased boolean, referred_at timestamptz, referred_position bigint,
               attended bigint)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
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
    SELECT t.total_count, p.member_id, p.name, p.email, p.stage, p.level_of_care,
           p.primary_counselor, p.version, p.consecutive_missed_check_ins,
           p.last_missed_due_at, p.erased, p.referred_at, p.referred_position, p.attended
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
                                                AND a.held_at > $6
                                                AND a.held_at <= $7) < $8
                                   END)
                   END AS total_count) t
      LEFT JOIN page p ON true;
END
$$;
