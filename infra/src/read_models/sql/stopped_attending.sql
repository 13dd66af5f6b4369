-- A page of the members on the roster of an open group whose last $3 or more attendance
-- records there since they (last) joined are absences (excused ones neither count nor break
-- the run), for one facilitator ($2) or all (NULL), by group formation then join, with the
-- total that match. $1 clinic; $4, $5 after this (formed, joined) position pair (0, 0 for the
-- first page); $6 rows to return. The whole flagged set is computed for its total, then the
-- page is taken from it. Always one row at least: an empty page is one row with a NULL
-- member_id and the total.
--
-- Counted now, from the attendance after corrections, as GroupState::consecutive_absences
-- counts: within the member's current stretch on the roster (held at or after `joined_at`),
-- in (held_at, session_id) order. Each roster member costs one short walk of
-- session_attendance_streak_idx, newest first: the run reaches $3 exactly when the newest $3
-- records that count are all absences. Only those members (a few) are then counted in full,
-- from the last session they attended, as an index range.
WITH flagged AS (
    SELECT g.group_id, g.name AS group_name, g.facilitator, r.member_id, run.absences,
           g.formed_position, r.joined_position
      FROM group_rosters r
      JOIN group_summaries g ON g.clinic = r.clinic AND g.group_id = r.group_id
      CROSS JOIN LATERAL (
          SELECT count(*) AS absences
            FROM (SELECT a.status
                    FROM session_attendance a
                   WHERE a.clinic = r.clinic AND a.group_id = r.group_id
                     AND a.member_id = r.member_id AND a.held_at >= r.joined_at
                     AND a.status <> 'excused'
                   ORDER BY a.held_at DESC, a.session_id DESC
                   LIMIT $3) newest
           WHERE newest.status = 'absent'
      ) head
      LEFT JOIN LATERAL (
          SELECT a.held_at, a.session_id
            FROM session_attendance a
           WHERE a.clinic = r.clinic AND a.group_id = r.group_id AND a.member_id = r.member_id
             AND a.held_at >= r.joined_at
             AND a.status IN ('present', 'late')
           ORDER BY a.held_at DESC, a.session_id DESC
           LIMIT 1
      ) last_attended ON true
      CROSS JOIN LATERAL (
          SELECT count(*) AS absences
            FROM session_attendance a
           WHERE a.clinic = r.clinic AND a.group_id = r.group_id AND a.member_id = r.member_id
             AND (a.held_at, a.session_id)
                 >= (coalesce(last_attended.held_at, r.joined_at),
                     coalesce(last_attended.session_id, '00000000-0000-0000-0000-000000000000'))
             AND a.status = 'absent'
      ) run
     WHERE r.clinic = $1
       AND NOT g.closed
       AND ($2::text IS NULL OR g.facilitator = $2)
       AND head.absences >= $3
)
SELECT t.total_count, p.*
  FROM (SELECT count(*) AS total_count FROM flagged) t
  LEFT JOIN LATERAL (
      SELECT *
        FROM flagged f
       WHERE (f.formed_position, f.joined_position) > ($4::bigint, $5::bigint)
       ORDER BY f.formed_position, f.joined_position
       LIMIT $6
  ) p ON true
 ORDER BY p.formed_position, p.joined_position
