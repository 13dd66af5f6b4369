-- The wrapped keys of some members; a destroyed key has a NULL wrapped_key.
-- $1 member ids.
SELECT member_id, wrapped_key, master_key_id
FROM member_keys
WHERE member_id = ANY($1)
