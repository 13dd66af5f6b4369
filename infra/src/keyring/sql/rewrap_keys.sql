-- Rotation: each live key re-wrapped under the new master key, in one statement.
-- $1 member ids, $2 wrapped keys, $3 the new master key id.
UPDATE member_keys AS k
SET wrapped_key = r.wrapped_key, master_key_id = $3
FROM unnest($1::uuid[], $2::bytea[]) AS r (member_id, wrapped_key)
WHERE k.member_id = r.member_id AND k.wrapped_key IS NOT NULL
