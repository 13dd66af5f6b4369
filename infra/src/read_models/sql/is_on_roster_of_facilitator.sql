-- $1 clinic, $2 member, $3 the facilitator's sub.
SELECT EXISTS (
    SELECT 1
      FROM group_rosters r
      JOIN group_summaries g ON g.clinic = r.clinic AND g.group_id = r.group_id
     WHERE r.clinic = $1 AND r.member_id = $2 AND g.facilitator = $3
)
