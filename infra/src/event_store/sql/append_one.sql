-- Appends one event to one stream: append.sql specialised for the commonest append, with
-- scalar parameters and the chain step written out (measured: the general statement's array
-- handling and chain function cost a third of a single-event append). Parameters: $1 clinic,
-- $2 stream id, $3 category, $4 expected version (NULL = any, 0 = no stream, N = exactly N),
-- $5 event id, $6 type, $7 schema version, $8 data, $9 metadata, $10 content digest. Returns
-- what append.sql returns.
WITH locked AS MATERIALIZED (
    -- As in append.sql: queue for the stream before writing anything.
    SELECT pg_advisory_xact_lock(hashtextextended($1::text || '/' || $2::text, 0)) AS locked
),
timed AS MATERIALIZED (
    -- The event's time, read once the lock is held (as in append.sql), and as the chain hashes it.
    SELECT t.at, int8send((extract(epoch FROM t.at) * 1000000)::bigint) AS micros
      FROM (SELECT clock_timestamp() AS at FROM locked) t
),
created_or_bumped AS (
    INSERT INTO streams AS s (clinic, stream_id, category, version, last_hash,
                              last_append_prev_hash)
    SELECT $1, $2, $3, 1, sha256(int8send(1) || l.micros || $10::bytea), ''::bytea
      FROM timed l
     WHERE $4::bigint IS NULL OR $4::bigint = 0
    ON CONFLICT (clinic, stream_id) DO UPDATE
       SET version = s.version + 1,
           last_hash = sha256(s.last_hash || int8send(s.version + 1)
                              || (SELECT micros FROM timed)
                              || $10::bytea),
           last_append_prev_hash = s.last_hash,
           updated_at = (SELECT at FROM timed)
     WHERE $4::bigint IS NULL
    RETURNING s.version, s.last_append_prev_hash, s.last_hash
),
bumped_at_expected AS (
    UPDATE streams AS s
       SET version = s.version + 1,
           last_hash = sha256(s.last_hash || int8send(s.version + 1) || l.micros || $10::bytea),
           last_append_prev_hash = s.last_hash,
           updated_at = l.at
      FROM timed l
     WHERE $4::bigint >= 1 AND s.clinic = $1 AND s.stream_id = $2 AND s.version = $4::bigint
    RETURNING s.version, s.last_append_prev_hash, s.last_hash
),
inserted AS (
    INSERT INTO events (clinic, stream_id, version, event_id, type, schema_version, data,
                        metadata, recorded_at, prev_hash, hash)
    SELECT $1, $2, h.version, $5::uuid, $6::text, $7::integer, $8::jsonb, $9::jsonb,
           (SELECT at FROM timed),
           h.last_append_prev_hash, h.last_hash
      FROM (SELECT * FROM created_or_bumped UNION ALL SELECT * FROM bumped_at_expected) h
    RETURNING position, version
)
SELECT version AS stream_version, ARRAY[position] AS positions FROM inserted
 UNION ALL
SELECT NULL, NULL WHERE NOT EXISTS (SELECT FROM inserted)
