-- Writes back the group summaries a page changed, one array per column.
INSERT INTO group_summaries (clinic, group_id, name, model, facilitator, capacity, schedule,
                             alumni, online, closed, version, roster_size, attended_count,
                             recorded_count, formed_at, formed_position)
SELECT *
  FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::integer[],
              $7::text[], $8::boolean[], $9::boolean[], $10::boolean[], $11::bigint[],
              $12::integer[], $13::bigint[], $14::bigint[], $15::timestamptz[], $16::bigint[])
    ON CONFLICT (clinic, group_id) DO UPDATE
   SET name = EXCLUDED.name,
       model = EXCLUDED.model,
       facilitator = EXCLUDED.facilitator,
       capacity = EXCLUDED.capacity,
       schedule = EXCLUDED.schedule,
       alumni = EXCLUDED.alumni,
       online = EXCLUDED.online,
       closed = EXCLUDED.closed,
       version = EXCLUDED.version,
       roster_size = EXCLUDED.roster_size,
       attended_count = EXCLUDED.attended_count,
       recorded_count = EXCLUDED.recorded_count,
       formed_at = EXCLUDED.formed_at,
       formed_position = EXCLUDED.formed_position
