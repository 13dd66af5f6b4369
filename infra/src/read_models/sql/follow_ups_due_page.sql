-- A page of the staff follow-up list (follow_ups_due.sql): open follow-ups due by $2 (not an
-- erased member's), by due
-- time then id, with the total that match. $1 clinic; $3, $4 after this (due time, id) pair (the
-- first page passes a pair before every row: a plain row comparison stays an index condition
-- in a generic plan, where `$3 IS NULL OR ...` would become a filter over the rows before the
-- cursor); $5 rows to return. Always one row at least: an empty page is one row with a NULL
-- follow_up_id and the total.
SELECT t.total_count, p.*
  FROM (SELECT count(*) AS total_count
          FROM member_follow_ups f
         WHERE f.clinic = $1 AND f.status <> 'completed' AND f.due_at <= $2
           AND NOT coalesce((SELECT m.erased FROM member_summaries m
                              WHERE m.clinic = f.clinic AND m.member_id = f.member_id),
                            false)) t
  LEFT JOIN LATERAL (
      SELECT f.member_id, f.follow_up_id, f.day_offset, f.due_at, f.status, f.outcome,
             f.completed_at
        FROM member_follow_ups f
       WHERE f.clinic = $1 AND f.status <> 'completed' AND f.due_at <= $2
         AND (f.due_at, f.follow_up_id) > ($3::timestamptz, $4::uuid)
         AND NOT coalesce((SELECT m.erased FROM member_summaries m
                            WHERE m.clinic = f.clinic AND m.member_id = f.member_id), false)
       ORDER BY f.due_at, f.follow_up_id
       LIMIT $5
  ) p ON true
 ORDER BY p.due_at, p.follow_up_id
