-- The summaries of the members a page's events touch ($1, $2: clinics and member ids).
SELECT m.clinic, m.member_id, m.name, m.email, m.stage, m.level_of_care, m.primary_counselor,
       m.version, m.consecutive_missed_check_ins, m.last_missed_due_at, m.erased, m.referred_at,
       m.referred_position, m.updated_at
  FROM unnest($1::text[], $2::uuid[]) AS k (clinic, member_id)
  JOIN member_summaries m ON m.clinic = k.clinic AND m.member_id = k.member_id
