-- Recomputes every hash chain of the scope ($1: a clinic, or NULL for all) and names the
-- streams whose chain is broken: a changed row (its hash no longer matches its content), a
-- missing or inserted row (a version gap, or a prev_hash that is not the previous row's
-- hash), or a streams row whose version disagrees with its events.
WITH checked AS (
    SELECT clinic, stream_id, version,
           version = row_number() OVER w
           AND prev_hash = coalesce(lag(hash) OVER w, ''::bytea)
           AND hash = event_hash(prev_hash, clinic, stream_id, version, event_id, type,
                                 schema_version, data, metadata, recorded_at) AS intact
      FROM events
     WHERE $1::text IS NULL OR clinic = $1
    WINDOW w AS (PARTITION BY clinic, stream_id ORDER BY version)
), per_stream AS (
    SELECT clinic, stream_id, count(*) AS events, max(version) AS last_version,
           bool_and(intact) AS intact
      FROM checked
     GROUP BY clinic, stream_id
), joined AS (
    SELECT coalesce(s.clinic, p.clinic) AS clinic,
           coalesce(s.stream_id, p.stream_id) AS stream_id,
           coalesce(p.events, 0) AS events,
           coalesce(p.intact, false) AND s.version IS NOT DISTINCT FROM p.last_version AS ok
      FROM per_stream p
      FULL JOIN (SELECT clinic, stream_id, version FROM streams
                  WHERE $1::text IS NULL OR clinic = $1) s
        ON s.clinic = p.clinic AND s.stream_id = p.stream_id
)
SELECT count(*) AS streams_checked,
       coalesce(sum(events), 0)::bigint AS events_checked,
       coalesce(array_agg(clinic || '/' || stream_id ORDER BY clinic, stream_id)
                FILTER (WHERE NOT ok), '{}') AS broken_streams
  FROM joined
