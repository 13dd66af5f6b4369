-- The follow-ups a page's events name ($1, $2), and every follow-up of the members it
-- readmits ($3, $4).
SELECT f.clinic, f.follow_up_id, f.member_id, f.day_offset, f.due_at, f.status, f.outcome,
       f.completed_at
  FROM unnest($1::text[], $2::uuid[]) AS k (clinic, follow_up_id)
  JOIN member_follow_ups f ON f.clinic = k.clinic AND f.follow_up_id = k.follow_up_id
UNION
SELECT f.clinic, f.follow_up_id, f.member_id, f.day_offset, f.due_at, f.status, f.outcome,
       f.completed_at
  FROM unnest($3::text[], $4::uuid[]) AS k (clinic, member_id)
  JOIN member_follow_ups f ON f.clinic = k.clinic AND f.member_id = k.member_id
