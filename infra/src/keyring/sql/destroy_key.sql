-- Erasure: the wrapped key is destroyed and a tombstone stays. A member who never had a key
-- gets a tombstone too, so no key can be created for them later.
-- $1 member, $2 clinic. Returns a row only if a live key was destroyed now.
WITH destroyed AS (
    UPDATE member_keys
    SET wrapped_key = NULL, master_key_id = NULL, destroyed_at = now()
    WHERE member_id = $1 AND clinic = $2 AND wrapped_key IS NOT NULL
    RETURNING member_id
), tombstone AS (
    INSERT INTO member_keys (member_id, clinic, destroyed_at)
    VALUES ($1, $2, now())
    ON CONFLICT (member_id) DO NOTHING
    RETURNING member_id
)
SELECT member_id FROM destroyed
