-- Roster entries whose member no longer belongs on the group's roster, as the read models
-- see them (GroupProfile::admits, DOMAIN.md: while admitted, or as alumni for a group marked
-- for alumni): members who left treatment, on a group not for alumni, and erased members on
-- any group. Every clinic, oldest entry first, at most $1. Closed groups keep their last
-- roster. The scheduler checks each against the log before it appends anything (the read
-- models may lag a readmission).
SELECT r.clinic, r.group_id, r.member_id, r.joined_position
  FROM group_rosters r
  JOIN group_summaries g ON g.clinic = r.clinic AND g.group_id = r.group_id
  JOIN member_summaries m ON m.clinic = r.clinic AND m.member_id = r.member_id
 WHERE NOT g.closed
   AND (m.erased
        OR NOT (m.stage = 'in_treatment' OR (g.alumni AND m.stage IN ('aftercare', 'alumni'))))
 ORDER BY r.joined_position
 LIMIT $1
