-- The event store: an append-only log of facts, one row per event, grouped into streams.
--
-- Operators and auditors may query these tables directly; their names and columns are part of
-- the product (see README "The event store").

-- One row per stream. `version` is the version of the stream's last event (0 = no events yet
-- cannot happen: a stream row is created with its first append). `last_hash` caches the hash
-- of that event so an append need not look it up; verification never trusts it.
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
    -- Tamper evidence: `hash` = SHA-256 over `prev_hash` and this row's content (see
    -- event_hash below); `prev_hash` is the hash of the stream's previous event (empty for
    -- version 1). Changing any stored byte breaks the chain from that event on.
    prev_hash       bytea       NOT NULL,
    hash            bytea       NOT NULL,
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (clinic, stream_id, version),
    FOREIGN KEY (clinic, stream_id) REFERENCES streams (clinic, stream_id)
);

-- Subscribers page the whole log, or one clinic's, in commit-safe order.
CREATE INDEX events_commit_order_idx ON events (transaction_id, position);
CREATE INDEX events_clinic_commit_order_idx ON events (clinic, transaction_id, position);
-- "A stream as of a moment" and auditors' time-based reads.
CREATE INDEX events_clinic_recorded_at_idx ON events (clinic, recorded_at);

-- The content an event's hash covers, in an unambiguous encoding (fixed-width numbers,
-- length-prefixed text). jsonb's text form is canonical (keys sorted, one spacing), so the same
-- stored value always hashes the same.
CREATE FUNCTION event_hash(
    p_prev_hash bytea, p_clinic text, p_stream_id text, p_version bigint, p_event_id uuid,
    p_type text, p_schema_version integer, p_data jsonb, p_metadata jsonb, p_recorded_at timestamptz
) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(
        p_prev_hash
        || int8send(p_version)
        || uuid_send(p_event_id)
        || int4send(length(p_clinic)) || convert_to(p_clinic, 'UTF8')
        || int4send(length(p_stream_id)) || convert_to(p_stream_id, 'UTF8')
        || int4send(length(p_type)) || convert_to(p_type, 'UTF8')
        || int4send(p_schema_version)
        || int4send(length(p_data::text)) || convert_to(p_data::text, 'UTF8')
        || int4send(length(p_metadata::text)) || convert_to(p_metadata::text, 'UTF8')
        || int8send((extract(epoch FROM p_recorded_at) * 1000000)::bigint)
    )
$$;

-- Appends events to one stream in one round trip, atomically.
--
-- p_expected_version: NULL = any, 0 = the stream must not exist, N = the stream's version must
-- be exactly N. Returns one row:
--   outcome 'appended'  : the events were stored; positions/versions are theirs;
--   outcome 'duplicate' : every event id was already stored in this stream (a retried request);
--                         positions/versions are those of the original append; nothing stored;
--   outcome 'conflict'  : the expected version did not match; stream_version is the actual one
--                         (0 = no stream); nothing stored.
-- An event id stored by another append (another stream, or a different batch) raises
-- unique_violation on events_event_id_key: a caller bug, never silently accepted.
--
-- Writers to one stream are serialised by a transaction-scoped advisory lock taken before the
-- transaction writes anything. That lock also orders their transaction ids: the second writer's
-- id is assigned after the first commits, so commit-safe order keeps each stream's versions in
-- order.
CREATE FUNCTION append_to_stream(
    p_clinic text, p_stream_id text, p_category text, p_expected_version bigint,
    p_event_ids uuid[], p_types text[], p_schema_versions integer[], p_data jsonb[], p_metadata jsonb[]
) RETURNS TABLE (outcome text, stream_version bigint, positions bigint[], versions bigint[])
LANGUAGE plpgsql AS $$
DECLARE
    v_current bigint;
    v_hash bytea;
    v_now timestamptz := now();
    v_count integer := cardinality(p_event_ids);
    v_positions bigint[] := '{}';
    v_versions bigint[] := '{}';
    v_position bigint;
    v_same_stream boolean;
    i integer;
BEGIN
    IF v_count IS NULL OR v_count = 0 THEN
        RAISE EXCEPTION 'append_to_stream: no events' USING ERRCODE = '22023';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(p_clinic || '/' || p_stream_id, 0));

    -- A retried request: the first id is stored already. Answer as the original append did.
    -- (Looked up by event id alone, so the unique index answers it whatever the stream's length.)
    SELECT array_agg(e.position ORDER BY e.version), array_agg(e.version ORDER BY e.version),
           bool_and(e.clinic = p_clinic AND e.stream_id = p_stream_id)
      INTO v_positions, v_versions, v_same_stream
      FROM events e
     WHERE e.event_id = ANY (p_event_ids);
    IF v_positions IS NOT NULL THEN
        IF v_same_stream AND cardinality(v_positions) = v_count THEN
            SELECT s.version INTO v_current FROM streams s
             WHERE s.clinic = p_clinic AND s.stream_id = p_stream_id;
            RETURN QUERY SELECT 'duplicate'::text, v_current, v_positions, v_versions;
            RETURN;
        END IF;
        RAISE EXCEPTION 'append_to_stream: an event id is already stored for another append'
            USING ERRCODE = '23505', CONSTRAINT = 'events_event_id_key';
    END IF;
    v_positions := '{}';
    v_versions := '{}';

    SELECT s.version, s.last_hash INTO v_current, v_hash
      FROM streams s WHERE s.clinic = p_clinic AND s.stream_id = p_stream_id;
    IF p_expected_version IS NOT NULL AND p_expected_version <> coalesce(v_current, 0) THEN
        RETURN QUERY SELECT 'conflict'::text, coalesce(v_current, 0), NULL::bigint[], NULL::bigint[];
        RETURN;
    END IF;

    IF v_current IS NULL THEN
        v_current := 0;
        v_hash := ''::bytea;
        -- Placeholder values; the UPDATE below sets the real ones in this transaction.
        INSERT INTO streams (clinic, stream_id, category, version, last_hash)
        VALUES (p_clinic, p_stream_id, p_category, 1, v_hash);
    END IF;

    FOR i IN 1 .. v_count LOOP
        v_current := v_current + 1;
        INSERT INTO events (clinic, stream_id, version, event_id, type, schema_version, data,
                            metadata, recorded_at, prev_hash, hash)
        VALUES (p_clinic, p_stream_id, v_current, p_event_ids[i], p_types[i], p_schema_versions[i],
                p_data[i], p_metadata[i], v_now, v_hash,
                event_hash(v_hash, p_clinic, p_stream_id, v_current, p_event_ids[i], p_types[i],
                           p_schema_versions[i], p_data[i], p_metadata[i], v_now))
        RETURNING events.position, events.hash INTO v_position, v_hash;
        v_positions := v_positions || v_position;
        v_versions := v_versions || v_current;
    END LOOP;

    UPDATE streams s SET version = v_current, last_hash = v_hash, updated_at = v_now
     WHERE s.clinic = p_clinic AND s.stream_id = p_stream_id;

    -- Subscribers wake on this; they still poll as a fallback. The payload is the clinic and
    -- the last position, never event content.
    PERFORM pg_notify('clinic_events', p_clinic || ':' || v_position);

    RETURN QUERY SELECT 'appended'::text, v_current, v_positions, v_versions;
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
