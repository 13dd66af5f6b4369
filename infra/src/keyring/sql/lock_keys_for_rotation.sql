-- Every live data key, locked until the rotation commits (a concurrent erasure waits, then
-- finds the key re-wrapped and destroys it all the same).
SELECT member_id, wrapped_key, master_key_id
FROM member_keys
WHERE wrapped_key IS NOT NULL
ORDER BY member_id
FOR UPDATE
