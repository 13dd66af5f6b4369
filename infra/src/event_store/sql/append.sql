-- Appends events to one stream atomically, in one statement. Parameters: $1 clinic, $2 stream
-- id, $3 category, $4 expected version (NULL = any, 0 = no stream, N = exactly N), $5..$9 the
-- events' ids, types, schema versions, data and metadata, $10 their content digests.
--
-- Returns one row: the stream's new version and the events' positions, or NULLs when nothing was
-- appended because the stream was not at the expected version (the caller then looks the event
-- ids up: a retried append is answered as stored; see append.rs). An event id already stored
-- raises unique_violation on events_event_id_key.
WITH locked AS MATERIALIZED (
    -- Writers to one stream queue here, before the transaction writes anything. Its id (taken at
    -- the first write, below) therefore follows the lock order, and commit-safe reading
    -- (transaction_id, position) keeps each stream's versions in order.
    SELECT pg_advisory_xact_lock(hashtextextended($1::text || '/' || $2::text, 0)) AS locked,
           cardinality($5::uuid[])::bigint AS n
),
stamped AS MATERIALIZED (
    -- The events' time, read once the lock is held: the transaction's start (`(SELECT at FROM stamped)`) may come
    -- before a wait for the lock, behind a writer whose events then carry a later time than
    -- these, and a read of the stream as of a moment would skip one of its versions.
    SELECT clock_timestamp() AS at FROM locked
),
created_or_bumped AS (
    -- Any version, or no stream yet. ON CONFLICT updates the newest committed row, even one
    -- committed while this statement waited for the lock.
    INSERT INTO streams AS s (clinic, stream_id, category, version, last_hash,
                              last_append_prev_hash)
    SELECT $1, $2, $3, l.n, (event_chain(''::bytea, 1, (SELECT at FROM stamped), $10::bytea[]))[l.n], ''::bytea
      FROM locked l
     WHERE $4::bigint IS NULL OR $4::bigint = 0
    ON CONFLICT (clinic, stream_id) DO UPDATE
       SET version = s.version + EXCLUDED.version,
           last_hash = (event_chain(s.last_hash, s.version + 1, (SELECT at FROM stamped), $10::bytea[]))
                       [EXCLUDED.version],
           last_append_prev_hash = s.last_hash,
           updated_at = (SELECT at FROM stamped)
     WHERE $4::bigint IS NULL
    RETURNING s.version, s.last_append_prev_hash
),
bumped_at_expected AS (
    -- Exactly version N. UPDATE re-checks the newest row version against `version = N`.
    UPDATE streams AS s
       SET version = s.version + l.n,
           last_hash = (event_chain(s.last_hash, s.version + 1, (SELECT at FROM stamped), $10::bytea[]))[l.n],
           last_append_prev_hash = s.last_hash,
           updated_at = (SELECT at FROM stamped)
      FROM locked l
     WHERE $4::bigint >= 1 AND s.clinic = $1 AND s.stream_id = $2 AND s.version = $4::bigint
    RETURNING s.version, s.last_append_prev_hash
),
chained AS MATERIALIZED (
    SELECT h.version - l.n AS base, h.last_append_prev_hash AS prev,
           event_chain(h.last_append_prev_hash, h.version - l.n + 1, (SELECT at FROM stamped), $10::bytea[])
               AS hashes
      FROM (SELECT * FROM created_or_bumped UNION ALL SELECT * FROM bumped_at_expected) h,
           locked l
),
inserted AS (
    INSERT INTO events (clinic, stream_id, version, event_id, type, schema_version, data,
                        metadata, recorded_at, prev_hash, hash)
    SELECT $1, $2, c.base + u.n, u.event_id, u.type, u.schema_version, u.data, u.metadata, (SELECT at FROM stamped),
           CASE WHEN u.n = 1 THEN c.prev ELSE c.hashes[u.n - 1] END, c.hashes[u.n]
      FROM chained c,
           unnest($5::uuid[], $6::text[], $7::integer[], $8::jsonb[], $9::jsonb[])
               WITH ORDINALITY AS u(event_id, type, schema_version, data, metadata, n)
     ORDER BY u.n
    RETURNING position, version
)
SELECT max(version) AS stream_version, array_agg(position ORDER BY version) AS positions
  FROM inserted
