-- The event store: an append-only log of facts, one row per event, grouped into streams.
--
-- Operators and auditors may query these tables directly; their names and columns are part of
-- the product (see README "The event store").

-- One row per stream. `version` is the version of the stream's last event; `last_hash` caches
-- that event's hash so an append need not look it up (verification never trusts it). A stream
-- row exists from its first append on.
CREATE TABLE streams (
    clinic      text        NOT NULL CHECK (clinic <> ''),
    stream_id   text        NOT NULL CHECK (stream_id ~ '^[a-z][a-z_]*-.+$'),
    category    text        NOT NULL,
    version     bigint      NOT NULL CHECK (version >= 1),
    last_hash   bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (clinic, stream_id)
);

-- One row per event; never updated, never deleted (see the triggers below).
--
-- `position` is a global, increasing number assigned at insert. Concurrent transactions take
-- positions out of commit order, so a subscriber must not page by `position` alone: it reads in
-- (`transaction_id`, `position`) order and only rows whose transaction is older than every
-- transaction still running (`transaction_id < pg_snapshot_xmin(pg_current_snapshot())`).
-- Such rows can no longer be joined by a late commit, so the subscriber never skips one.
--
-- Only append_to_stream writes here; it keeps `streams` in step (no foreign key: the function
-- holds the stream's lock, and verification compares the two tables).
CREATE TABLE events (
    position        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    clinic          text        NOT NULL,
    stream_id       text        NOT NULL,
    version         bigint      NOT NULL CHECK (version >= 1),
    event_id        uuid        NOT NULL,
    type            text        NOT NULL CHECK (type <> ''),
    schema_version  integer     NOT NULL CHECK (schema_version >= 1),
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- Tamper evidence. The writer computes `digest` = SHA-256 over the event's content (clinic,
    -- stream, id, type, schema version, canonical JSON of data and metadata; see
    -- infra/src/event_store/hash.rs); the append chains it:
    --   hash = SHA-256(prev_hash || version (8 bytes, big-endian)
    --                  || recorded_at (microseconds since 1970, 8 bytes) || digest)
    -- with `prev_hash` the hash of the stream's previous event (empty for version 1). The
    -- digest is not stored: verification recomputes it from the stored content, so changing
    -- any stored byte breaks the chain from that event on.
    prev_hash       bytea       NOT NULL,
    hash            bytea       NOT NULL,
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (clinic, stream_id, version)
);

-- Subscribers page the log in commit-safe order (clinic-scoped readers filter on it).
CREATE INDEX events_commit_order_idx ON events (transaction_id, position);

-- Appends events to one stream in one round trip, atomically.
--
-- p_expected_version: NULL = any, 0 = the stream must not exist, N = the stream's version must
-- be exactly N. p_digests: each event's content digest (see `hash` above). Returns one row:
--   outcome 'appended'  : the events were stored; positions are theirs;
--   outcome 'duplicate' : every event id was already stored by one append to this stream (a
--                         retried request); positions are the original ones; nothing stored;
--   outcome 'conflict'  : the expected version did not match; stream_version is the actual one
--                         (0 = no stream); nothing stored.
-- An event id stored by another append (another stream, or a different batch) raises
-- unique_violation on events_event_id_key: a caller bug, never silently accepted.
--
-- Writers to one stream are serialised by a transaction-scoped advisory lock taken before the
-- transaction writes anything. That lock also orders their transaction ids: the second writer's
-- id is assigned after the first commits, so commit-safe order keeps each stream's versions in
-- order. Notifying subscribers is the caller's job, after commit (see event_store/notify.rs).
CREATE FUNCTION append_to_stream(
    p_clinic text, p_stream_id text, p_category text, p_expected_version bigint,
    p_event_ids uuid[], p_types text[], p_schema_versions integer[], p_data jsonb[],
    p_metadata jsonb[], p_digests bytea[]
) RETURNS TABLE (outcome text, stream_version bigint, positions bigint[])
LANGUAGE plpgsql AS $$
DECLARE
    v_count integer := cardinality(p_event_ids);
    v_now timestamptz := now();
    v_micros bytea := int8send((extract(epoch FROM now()) * 1000000)::bigint);
    v_current bigint;
    v_hash bytea;
    v_prev_hashes bytea[] := '{}';
    v_hashes bytea[] := '{}';
    v_positions bigint[];
    v_same_stream boolean;
    i integer;
BEGIN
    IF v_count IS NULL OR v_count = 0
       OR cardinality(p_types) <> v_count OR cardinality(p_schema_versions) <> v_count
       OR cardinality(p_data) <> v_count OR cardinality(p_metadata) <> v_count
       OR cardinality(p_digests) <> v_count THEN
        RAISE EXCEPTION 'append_to_stream: 1 or more events, with every array of one length'
            USING ERRCODE = '22023';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(p_clinic || '/' || p_stream_id, 0));

    -- A retried request: answer as the original append did. (Looked up by event id alone, so
    -- the unique index answers whatever the stream's length.)
    SELECT array_agg(e.position ORDER BY e.version),
           bool_and(e.clinic = p_clinic AND e.stream_id = p_stream_id)
      INTO v_positions, v_same_stream
      FROM events e
     WHERE e.event_id = ANY (p_event_ids);
    IF v_positions IS NOT NULL THEN
        IF v_same_stream AND cardinality(v_positions) = v_count THEN
            SELECT s.version INTO v_current FROM streams s
             WHERE s.clinic = p_clinic AND s.stream_id = p_stream_id;
            RETURN QUERY SELECT 'duplicate'::text, v_current, v_positions;
            RETURN;
        END IF;
        RAISE EXCEPTION 'append_to_stream: an event id is already stored by another append'
            USING ERRCODE = '23505', CONSTRAINT = 'events_event_id_key';
    END IF;

    SELECT s.version, s.last_hash INTO v_current, v_hash
      FROM streams s WHERE s.clinic = p_clinic AND s.stream_id = p_stream_id;
    IF p_expected_version IS NOT NULL AND p_expected_version <> coalesce(v_current, 0) THEN
        RETURN QUERY SELECT 'conflict'::text, coalesce(v_current, 0), NULL::bigint[];
        RETURN;
    END IF;
    v_current := coalesce(v_current, 0);
    v_hash := coalesce(v_hash, ''::bytea);

    FOR i IN 1 .. v_count LOOP
        v_prev_hashes[i] := v_hash;
        v_hash := sha256(v_hash || int8send(v_current + i) || v_micros || p_digests[i]);
        v_hashes[i] := v_hash;
    END LOOP;

    WITH inserted AS (
        INSERT INTO events (clinic, stream_id, version, event_id, type, schema_version, data,
                            metadata, recorded_at, prev_hash, hash)
        SELECT p_clinic, p_stream_id, v_current + u.n, u.event_id, u.type, u.schema_version,
               u.data, u.metadata, v_now, u.prev_hash, u.hash
          FROM unnest(p_event_ids, p_types, p_schema_versions, p_data, p_metadata,
                      v_prev_hashes, v_hashes)
               WITH ORDINALITY AS u(event_id, type, schema_version, data, metadata, prev_hash,
                                    hash, n)
         ORDER BY u.n
        RETURNING events.position, events.version
    )
    SELECT array_agg(inserted.position ORDER BY inserted.version) INTO v_positions FROM inserted;

    INSERT INTO streams AS s (clinic, stream_id, category, version, last_hash)
    VALUES (p_clinic, p_stream_id, p_category, v_current + v_count, v_hash)
    ON CONFLICT (clinic, stream_id)
    DO UPDATE SET version = EXCLUDED.version, last_hash = EXCLUDED.last_hash, updated_at = v_now;

    RETURN QUERY SELECT 'appended'::text, v_current + v_count, v_positions;
END
$$;

-- The log is append-only in the database itself, for every role: UPDATE, DELETE and TRUNCATE
-- fail. (A superuser can still disable the triggers; the hash chain exposes what they change.)
CREATE FUNCTION events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = '42501';
END
$$;

CREATE TRIGGER events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
