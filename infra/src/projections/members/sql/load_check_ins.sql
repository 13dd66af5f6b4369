-- The check-ins a page's events complete or miss ($1, $2: clinics and check-in ids), and the
-- check-ins still scheduled of the members it discharges ($3, $4): a discharge closes them.
SELECT c.clinic, c.check_in_id, c.member_id, c.due_at, c.channel, c.status, c.completed_at,
       c.closed_by_discharge
  FROM unnest($1::text[], $2::uuid[]) AS k (clinic, check_in_id)
  JOIN member_check_ins c ON c.clinic = k.clinic AND c.check_in_id = k.check_in_id
UNION
SELECT c.clinic, c.check_in_id, c.member_id, c.due_at, c.channel, c.status, c.completed_at,
       c.closed_by_discharge
  FROM unnest($3::text[], $4::uuid[]) AS k (clinic, member_id)
  JOIN member_check_ins c ON c.clinic = k.clinic AND c.member_id = k.member_id
 WHERE c.status = 'scheduled'
