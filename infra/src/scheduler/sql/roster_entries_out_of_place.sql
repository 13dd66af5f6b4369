-- Roster entries whose member no longer belongs on the group's roster, as the read models
-- see them (GroupProfile::admits, DOMAIN.md: while admitted, or as alumni for a group marked
-- for alumni): members who left treatment, on a group not for alumni, and erased members on
-- any group. Every clinic, oldest entry first, at most $1. Closed groups keep their last
-- roster. The scheduler checks each against the log before it appends anything (the read
-- models may lag a readmission).
--
-- Left out until $2 (now) has passed them, as the domain would refuse the leave now: entries
-- that join later than now, and members listed in a session recorded as held now or later
-- (a leave may not come at or before a recorded session that lists the member). Picked every tick,
-- enough of them would fill the batch before the ones that can go.
SELECT r.clinic, r.group_id, r.member_id, r.joined_position
  FROM group_rosters r
  JOIN group_summaries g ON g.clinic = r.clinic AND g.group_id = r.group_id
  JOIN member_summaries m ON m.clinic = r.clinic AND m.member_id = r.member_id
 WHERE NOT g.closed
   AND (m.erased
        OR NOT (m.stage = 'in_treatment' OR (g.alumni AND m.stage IN ('aftercare', 'alumni'))))
   AND r.joined_at <= $2
   AND NOT EXISTS (SELECT FROM session_attendance a
                    WHERE a.clinic = r.clinic AND a.group_id = r.group_id
                      AND a.member_id = r.member_id AND a.held_at >= $2)
 ORDER BY r.joined_position
 LIMIT $1
