-- The events' time is read once every lock is held (clock_timestamp() after the locks), not
-- at the transaction's start (now()): a group waiting for one stream's lock behind a long
-- batch may reach another stream after a writer that started later and went first there, and
-- its event would then carry an earlier time than that writer's later version; a read of the
-- stream as of a moment between the two would skip a version. append.sql and append_one.sql
-- read it the same way. Otherwise append_group is migration 10's.
CREATE OR REPLACE FUNCTION append_group(text[], text[], text[], bigint[], uuid[], text[], integer[],
                             jsonb[], jsonb[], bytea[])
RETURNS TABLE (place bigint, stream_version bigint, event_position bigint)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET lock_timeout = '1s'
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH input AS MATERIALIZED (
        SELECT *
          FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                   WITH ORDINALITY AS i(clinic, stream_id, category, expected, event_id, type,
                                        schema_version, data, metadata, digest, n)
    ),
    locked AS MATERIALIZED (
        -- Every stream's lock before the transaction writes anything (so its id follows each
        -- stream's lock order, as in append.sql), in one global order so that two groups can
        -- never deadlock. An aggregate: all are held before the first write below.
        -- The time is read above the aggregate, once it has taken the last lock.
        SELECT t.streams, t.at, int8send((extract(epoch FROM t.at) * 1000000)::bigint) AS micros
          FROM (SELECT a.streams, clock_timestamp() AS at
                  FROM (SELECT count(k.locked) AS streams
                          FROM (SELECT pg_advisory_xact_lock(o.key)::text AS locked
                                  FROM (SELECT hashtextextended(input.clinic || '/'
                                                                || input.stream_id, 0) AS key
                                          FROM input
                                         ORDER BY 1
                                        OFFSET 0) o) k
                        OFFSET 0) a
                OFFSET 0) t
    ),
    created_or_bumped AS (
        -- Any version, or no stream yet, as in append_one.sql. The update looks its own
        -- append's expected version and digest up: EXCLUDED has only the streams columns.
        INSERT INTO streams AS s (clinic, stream_id, category, version, last_hash,
                                  last_append_prev_hash)
        SELECT i.clinic, i.stream_id, i.category, 1,
               sha256(int8send(1) || l.micros || i.digest), ''::bytea
          FROM input i, locked l
         WHERE i.expected IS NULL OR i.expected = 0
        ON CONFLICT (clinic, stream_id) DO UPDATE
           SET version = s.version + 1,
               last_hash = sha256(s.last_hash || int8send(s.version + 1)
                                  || (SELECT l.micros FROM locked l)
                                  || (SELECT i.digest FROM input i
                                       WHERE i.clinic = s.clinic
                                         AND i.stream_id = s.stream_id)),
               last_append_prev_hash = s.last_hash,
               updated_at = (SELECT l.at FROM locked l)
         WHERE (SELECT i.expected FROM input i
                 WHERE i.clinic = s.clinic AND i.stream_id = s.stream_id) IS NULL
        RETURNING s.clinic, s.stream_id, s.version, s.last_append_prev_hash, s.last_hash
    ),
    bumped_at_expected AS (
        -- Exactly version N: UPDATE re-checks the newest row version against it.
        UPDATE streams AS s
           SET version = s.version + 1,
               last_hash = sha256(s.last_hash || int8send(s.version + 1) || l.micros
                                  || i.digest),
               last_append_prev_hash = s.last_hash,
               updated_at = l.at
          FROM input i, locked l
         WHERE i.expected >= 1 AND s.clinic = i.clinic AND s.stream_id = i.stream_id
           AND s.version = i.expected
        RETURNING s.clinic, s.stream_id, s.version, s.last_append_prev_hash, s.last_hash
    ),
    inserted AS (
        INSERT INTO events (clinic, stream_id, version, event_id, type, schema_version, data,
                            metadata, recorded_at, prev_hash, hash)
        SELECT i.clinic, i.stream_id, h.version, i.event_id, i.type, i.schema_version, i.data,
               i.metadata, (SELECT l.at FROM locked l), h.last_append_prev_hash, h.last_hash
          FROM (SELECT * FROM created_or_bumped UNION ALL SELECT * FROM bumped_at_expected) h
          JOIN input i ON i.clinic = h.clinic AND i.stream_id = h.stream_id
         ORDER BY i.n
        RETURNING events.clinic, events.stream_id, events.position, events.version
    )
    SELECT i.n, x.version, x.position
      FROM input i
      LEFT JOIN inserted x ON x.clinic = i.clinic AND x.stream_id = i.stream_id;
END
$$;
