-- The groups where a member has an attendance record (any status, after corrections) of a
-- session held in ($3, $4]: $1 clinic, $2 member. Time travel replays these groups' streams as
-- they were recorded then (a session recorded later is not in them).
SELECT DISTINCT group_id
  FROM session_attendance
 WHERE clinic = $1 AND member_id = $2 AND held_at > $3 AND held_at <= $4
