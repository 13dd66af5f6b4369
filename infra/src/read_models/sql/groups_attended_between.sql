-- The groups where a member has an attendance record (any status, after corrections) of a
-- session held in [$3, $4]: $1 clinic, $2 member. Time travel replays these groups' streams as
-- they were recorded then (a session recorded later is not in them); a superset is harmless.
-- One probe of session_attendance_streak_idx per group of the clinic (the member's records
-- have no index of their own across statuses).
SELECT g.group_id
  FROM group_summaries g
 WHERE g.clinic = $1
   AND EXISTS (SELECT 1
                 FROM session_attendance a
                WHERE a.clinic = g.clinic AND a.group_id = g.group_id AND a.member_id = $2
                  AND a.held_at >= $3 AND a.held_at <= $4)
