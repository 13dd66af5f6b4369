-- Writes back the roster entries a page added.
INSERT INTO group_rosters (clinic, group_id, member_id, joined_at, joined_position)
SELECT *
  FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::bigint[])
    ON CONFLICT (clinic, group_id, member_id) DO UPDATE
   SET joined_at = EXCLUDED.joined_at,
       joined_position = EXCLUDED.joined_position
