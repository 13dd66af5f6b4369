-- no-transaction
-- (First line: sqlx runs this file outside a transaction, which CREATE INDEX CONCURRENTLY needs.)
--
-- memberAsOf's `groups`: the group streams holding a MemberJoined of one member, recorded by a
-- moment (`infra/src/event_store/sql/streams_naming.sql`). Without an index that is a scan of
-- the whole log for one auditor's read. Partial: only MemberJoined rows are indexed, so no other
-- append maintains it (a join is a few events per member's episode, against every session,
-- check-in and attendance record). Built CONCURRENTLY: `clinic serve` migrates at start while
-- instances of the previous release may still be appending, and a plain CREATE INDEX would
-- block every append for as long as it scans the log. IF NOT EXISTS: an interrupted concurrent
-- build leaves an invalid index behind; drop it (`DROP INDEX events_member_joined_idx`) and
-- migrate again.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_member_joined_idx
    ON events (clinic, (data ->> 'member_id'), recorded_at)
    WHERE type = 'MemberJoined';
