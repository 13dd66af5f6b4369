-- The sessions of several groups with their attendance after corrections (batch loading), in
-- the order recorded. $1 clinic, $2 group ids.
SELECT s.group_id, s.session_id, s.status, s.starts_at, s.held_at, s.topic, s.duration_minutes,
       coalesce(a.members, '{}') AS attendance_members,
       coalesce(a.statuses, '{}') AS attendance_statuses
  FROM group_sessions s
  LEFT JOIN LATERAL (
      SELECT array_agg(a.member_id ORDER BY a.member_id) AS members,
             array_agg(a.status ORDER BY a.member_id) AS statuses
        FROM session_attendance a
       WHERE a.clinic = s.clinic AND a.session_id = s.session_id
  ) a ON true
 WHERE s.clinic = $1 AND s.group_id = ANY ($2)
 ORDER BY s.group_id, s.recorded_position
