-- Per-member data keys: the crypto-shredding half of erasure (42 CFR Part 2, HIPAA).
--
-- Personal fields of events are encrypted field by field under their member's data key
-- (AES-256-GCM). The key itself is stored only wrapped by the master key (CLINIC_MASTER_KEY),
-- which never touches the database. Erasing a member destroys the wrapped key: the ciphertexts
-- in `events` stay (the log and its hash chains are untouched) but nobody can read them again.
--
-- A destroyed key leaves a tombstone row, so "erased" and "never had a key" stay distinct and
-- a destroyed key can never be replaced by a fresh one that would make new writes readable
-- under an erased identity.
CREATE TABLE member_keys (
    member_id      uuid        PRIMARY KEY,
    clinic         text        NOT NULL,
    -- 12-byte nonce || AES-256-GCM(master key, data key, aad = member id); NULL once destroyed.
    wrapped_key    bytea,
    -- Which master key wraps it: the first 16 hex digits of SHA-256 over the master key, so a
    -- wrong CLINIC_MASTER_KEY is a clear start-up error and rotation can be resumed.
    master_key_id  text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    destroyed_at   timestamptz,
    CONSTRAINT member_keys_live_or_destroyed CHECK (
        (wrapped_key IS NOT NULL AND master_key_id IS NOT NULL AND destroyed_at IS NULL)
        OR (wrapped_key IS NULL AND master_key_id IS NULL AND destroyed_at IS NOT NULL)
    )
);

CREATE INDEX member_keys_master_key_idx ON member_keys (master_key_id) WHERE wrapped_key IS NOT NULL;

-- A destroyed key stays destroyed, and no key row is ever deleted (the tombstone is the proof
-- of erasure). Re-wrapping a live key (rotation) and destroying it are the only updates.
CREATE FUNCTION member_keys_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'member data keys are destroyed, never deleted'
            USING ERRCODE = '42501';
    END IF;
    IF OLD.destroyed_at IS NOT NULL THEN
        RAISE EXCEPTION 'a destroyed member data key cannot be restored or changed'
            USING ERRCODE = '42501';
    END IF;
    IF NEW.member_id <> OLD.member_id OR NEW.clinic <> OLD.clinic THEN
        RAISE EXCEPTION 'a member data key belongs to its member for good'
            USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER member_keys_guard
    BEFORE UPDATE OR DELETE ON member_keys
    FOR EACH ROW EXECUTE FUNCTION member_keys_guard();
CREATE TRIGGER member_keys_no_truncate
    BEFORE TRUNCATE ON member_keys
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
