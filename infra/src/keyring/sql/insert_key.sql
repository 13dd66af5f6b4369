-- A member's first data key. A concurrent writer may have created it first (or it may be a
-- tombstone): then nothing is inserted and the caller reads the row that is there. Nothing is
-- inserted either when live keys are wrapped by another master key (a rotation happened that
-- this process did not follow): one table, one master key. (Two range probes, so the partial
-- index on master_key_id answers both without scanning every key.)
-- $1 member, $2 clinic, $3 wrapped key, $4 master key id.
INSERT INTO member_keys (member_id, clinic, wrapped_key, master_key_id)
SELECT $1, $2, $3, $4
WHERE NOT EXISTS (
    SELECT 1 FROM member_keys WHERE wrapped_key IS NOT NULL AND master_key_id < $4
) AND NOT EXISTS (
    SELECT 1 FROM member_keys WHERE wrapped_key IS NOT NULL AND master_key_id > $4
)
ON CONFLICT (member_id) DO NOTHING
