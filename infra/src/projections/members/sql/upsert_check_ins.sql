-- Writes back the check-ins a page scheduled, completed, missed or closed by a discharge.
INSERT INTO member_check_ins (clinic, check_in_id, member_id, due_at, channel, status,
                              completed_at, closed_by_discharge)
SELECT *
  FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::text[], $6::text[],
              $7::timestamptz[], $8::boolean[])
    ON CONFLICT (clinic, check_in_id) DO UPDATE
   SET member_id = EXCLUDED.member_id,
       due_at = EXCLUDED.due_at,
       channel = EXCLUDED.channel,
       status = EXCLUDED.status,
       completed_at = EXCLUDED.completed_at,
       closed_by_discharge = EXCLUDED.closed_by_discharge
