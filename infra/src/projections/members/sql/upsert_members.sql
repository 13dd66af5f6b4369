-- Writes back the member summaries a page changed, one array per column.
INSERT INTO member_summaries (clinic, member_id, name, email, stage, level_of_care,
                              primary_counselor, version, consecutive_missed_check_ins,
                              last_missed_due_at, erased, referred_at, referred_position, updated_at)
SELECT *
  FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
              $8::bigint[], $9::integer[], $10::timestamptz[], $11::boolean[],
              $12::timestamptz[], $13::bigint[], $14::timestamptz[])
    ON CONFLICT (clinic, member_id) DO UPDATE
   SET name = EXCLUDED.name,
       email = EXCLUDED.email,
       stage = EXCLUDED.stage,
       level_of_care = EXCLUDED.level_of_care,
       primary_counselor = EXCLUDED.primary_counselor,
       version = EXCLUDED.version,
       consecutive_missed_check_ins = EXCLUDED.consecutive_missed_check_ins,
       last_missed_due_at = EXCLUDED.last_missed_due_at,
       erased = EXCLUDED.erased,
       referred_at = EXCLUDED.referred_at,
       referred_position = EXCLUDED.referred_position,
       updated_at = EXCLUDED.updated_at
