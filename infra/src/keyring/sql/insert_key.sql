-- A member's first data key. A concurrent writer may have created it first (or it may be a
-- tombstone): then nothing is inserted and the caller reads the row that is there.
-- $1 member, $2 clinic, $3 wrapped key, $4 master key id.
INSERT INTO member_keys (member_id, clinic, wrapped_key, master_key_id)
VALUES ($1, $2, $3, $4)
ON CONFLICT (member_id) DO NOTHING
