-- Writes back the follow-ups a page planned, marked due or completed.
INSERT INTO member_follow_ups (clinic, follow_up_id, member_id, day_offset, due_at, status,
                               outcome, completed_at)
SELECT *
  FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::integer[], $5::timestamptz[], $6::text[],
              $7::text[], $8::timestamptz[])
    ON CONFLICT (clinic, follow_up_id) DO UPDATE
   SET member_id = EXCLUDED.member_id,
       day_offset = EXCLUDED.day_offset,
       due_at = EXCLUDED.due_at,
       status = EXCLUDED.status,
       outcome = EXCLUDED.outcome,
       completed_at = EXCLUDED.completed_at
