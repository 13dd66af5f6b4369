-- Appending becomes one prepared SQL statement (infra/src/event_store/sql/append.sql) instead
-- of the PL/pgSQL function `append_to_stream`.
--
-- Why: measured with pgbench, planning the function's five statements on every call (migration
-- 5) cost more than writing the event; a prepared statement is planned once per connection. The
-- statement takes the stream's advisory lock, then bumps the `streams` row with
-- `INSERT ... ON CONFLICT DO UPDATE` (or `UPDATE ... WHERE version = N`), which work on the
-- newest committed row even when it committed after the statement's snapshot, and inserts the
-- events in the same statement. The idempotency lookup moved off the hot path: the client looks
-- event ids up only when an append was refused (a version conflict or a stored event id).

-- The hash the stream's last append chained its first event from (that event's `prev_hash`).
-- The append sets it to the row's old `last_hash` in the same UPDATE that bumps the version, so
-- the statement learns the previous hash without a second read (RETURNING shows only new
-- values). NULL on streams not appended to since this migration. Verification never trusts it.
ALTER TABLE streams ADD COLUMN last_append_prev_hash bytea;

-- The hashes of events chained after `p_prev`, the first at version `p_first_version`, all
-- recorded at `p_recorded_at`: the chain step documented beside the `events` table (and
-- mirrored by `hash::chain` in Rust, which verification uses).
CREATE FUNCTION event_chain(
    p_prev bytea, p_first_version bigint, p_recorded_at timestamptz, p_digests bytea[]
) RETURNS bytea[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    v_micros bytea := int8send((extract(epoch FROM p_recorded_at) * 1000000)::bigint);
    v_hash bytea := p_prev;
    v_hashes bytea[] := '{}';
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_digests), 0) LOOP
        v_hash := sha256(v_hash || int8send(p_first_version + i - 1) || v_micros || p_digests[i]);
        v_hashes[i] := v_hash;
    END LOOP;
    RETURN v_hashes;
END
$$;

DROP FUNCTION append_to_stream(text, text, text, bigint, uuid[], text[], integer[], jsonb[], jsonb[], bytea[]);
