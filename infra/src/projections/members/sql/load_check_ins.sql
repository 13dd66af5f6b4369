-- The check-ins a page's events complete or miss ($1, $2: clinics and check-in ids).
SELECT c.clinic, c.check_in_id, c.member_id, c.due_at, c.channel, c.status, c.completed_at
  FROM unnest($1::text[], $2::uuid[]) AS k (clinic, check_in_id)
  JOIN member_check_ins c ON c.clinic = k.clinic AND c.check_in_id = k.check_in_id
