-- The member-list page walks the stage's index when it has a stage to walk, and counts the
-- members at risk among those in treatment only. Migration 20261126000009 says why the page is
-- a function with a kept generic plan and what it returns; parameters and rows are unchanged.
--
-- Why: the kept plan walked the clinic in referral order and filtered on the stage, since a
-- generic plan cannot know whether `$2 IS NULL OR m.stage = $2` will hold. In treatment are the
-- recent referrals, so on the API benchmark's clinic a page of them read 8,333 members for 51
-- (7.5 ms), and `members(stage: IN_TREATMENT)` served 230 pages/s against 1,190 unfiltered.
-- Now the page is two arms behind one-time filters on `v_stage` (only one runs): the whole
-- clinic in referral order (member_summaries_list_idx), or one stage in referral order
-- (member_summaries_stage_idx, `m.stage = v_stage` an index condition). Only members in
-- treatment can be at risk, so asking for them walks that stage; the at-risk total counts
-- those members only (the CASE that hid the stage counted the whole clinic), and not at risk
-- is the stage total (the pipeline counters, consistent with member_summaries in any snapshot)
-- minus those at risk.
CREATE OR REPLACE FUNCTION members_page(text, text, boolean, bigint, bigint, timestamptz,
                                        timestamptz, bigint)
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
DECLARE
    -- The stage whose index the page walks (NULL: the whole clinic in referral order).
    v_stage text := CASE WHEN $3 IS TRUE THEN coalesce($2, 'in_treatment') ELSE $2 END;
BEGIN
    RETURN QUERY
    WITH page AS (
        (SELECT m.member_id, m.name, m.email, m.stage, m.level_of_care, m.primary_counselor,
                m.version, m.consecutive_missed_check_ins, m.last_missed_due_at, m.erased,
                m.referred_at, m.referred_position,
                (SELECT count(*)
                   FROM session_attendance a
                  WHERE a.clinic = m.clinic AND a.member_id = m.member_id
                    AND a.status IN ('present', 'late')
                    AND a.held_at > $6 AND a.held_at <= $7) AS attended
           FROM member_summaries m
          WHERE v_stage IS NULL
            AND m.clinic = $1
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
          LIMIT $5)
        UNION ALL
        (SELECT m.member_id, m.name, m.email, m.stage, m.level_of_care, m.primary_counselor,
                m.version, m.consecutive_missed_check_ins, m.last_missed_due_at, m.erased,
                m.referred_at, m.referred_position,
                (SELECT count(*)
                   FROM session_attendance a
                  WHERE a.clinic = m.clinic AND a.member_id = m.member_id
                    AND a.status IN ('present', 'late')
                    AND a.held_at > $6 AND a.held_at <= $7) AS attended
           FROM member_summaries m
          WHERE v_stage IS NOT NULL
            AND m.clinic = $1
            AND m.stage = v_stage
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
          LIMIT $5)
    )
    SELECT t.total_count, p.member_id, p.name, p.email, p.stage, p.level_of_care,
           p.primary_counselor, p.version, p.consecutive_missed_check_ins,
           p.last_missed_due_at, p.erased, p.referred_at, p.referred_position, p.attended
      FROM (SELECT CASE
                       WHEN $3::boolean IS NULL THEN stage_total.members
                       WHEN $3 THEN at_risk_total.members
                       ELSE stage_total.members - at_risk_total.members
                   END AS total_count
              FROM (SELECT coalesce(sum(c.members), 0)::bigint AS members
                      FROM pipeline_counts c
                     WHERE c.clinic = $1
                       AND ($2::text IS NULL OR c.stage = $2)) stage_total,
                   (SELECT count(*) AS members
                      FROM member_summaries m
                     WHERE $3::boolean IS NOT NULL
                       AND m.clinic = $1
                       AND m.stage = 'in_treatment'
                       AND ($2::text IS NULL OR $2 = 'in_treatment')
                       AND (SELECT count(*)
                              FROM session_attendance a
                             WHERE a.clinic = m.clinic AND a.member_id = m.member_id
                               AND a.status IN ('present', 'late')
                               AND a.held_at > $6 AND a.held_at <= $7) < $8) at_risk_total) t
      LEFT JOIN page p ON true;
END
$$;
