-- append_to_stream's statements are planned per call, never from a cached generic plan.
--
-- PL/pgSQL caches each statement's plan per connection and may switch to a generic plan after a
-- few calls. A pooled connection that planned the idempotency lookup (`event_id = ANY (...)`)
-- while `events` was nearly empty kept a sequential scan: the rebuild benchmark's generator saw
-- appends fall to ~250 events/s, with 46k sequential scans of `events` from inside this
-- function; with fresh connections it ran at ~4,000 events/s. Planning each call costs
-- microseconds; a stale plan costs a scan of the whole log.
ALTER FUNCTION append_to_stream(text, text, text, bigint, uuid[], text[], integer[], jsonb[], jsonb[], bytea[])
    SET plan_cache_mode = force_custom_plan;
