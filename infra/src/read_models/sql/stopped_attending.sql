-- Members on the roster of an open group whose last $3 or more attendance records there are
-- absences (excused ones neither count nor break the run), for one facilitator ($2) or all
-- (NULL). $1 clinic. The run is counted now, from the attendance after corrections: two
-- index probes per roster member.
SELECT g.group_id, g.name AS group_name, g.facilitator, r.member_id, run.absences
  FROM group_rosters r
  JOIN group_summaries g ON g.clinic = r.clinic AND g.group_id = r.group_id
  LEFT JOIN LATERAL (
      SELECT a.held_at, a.session_id
        FROM session_attendance a
       WHERE a.clinic = r.clinic AND a.group_id = r.group_id AND a.member_id = r.member_id
         AND a.status IN ('present', 'late')
       ORDER BY a.held_at DESC, a.session_id DESC
       LIMIT 1
  ) last_attended ON true
  CROSS JOIN LATERAL (
      SELECT count(*) AS absences
        FROM session_attendance a
       WHERE a.clinic = r.clinic AND a.group_id = r.group_id AND a.member_id = r.member_id
         AND a.status = 'absent'
         AND (last_attended.held_at IS NULL
              OR (a.held_at, a.session_id) > (last_attended.held_at, last_attended.session_id))
  ) run
 WHERE r.clinic = $1
   AND NOT g.closed
   AND ($2::text IS NULL OR g.facilitator = $2)
   AND run.absences >= $3
 ORDER BY g.formed_position, r.joined_position
