-- memberAsOf's `groups`: the group streams holding a MemberJoined of one member, recorded by a
-- moment (`infra/src/event_store/sql/streams_naming.sql`). Without an index that is a scan of
-- the whole log for one auditor's read. Partial: only MemberJoined rows are indexed, so no other
-- append maintains it (a join is a few events per member's episode, against every session,
-- check-in and attendance record).
CREATE INDEX events_member_joined_idx
    ON events (clinic, (data ->> 'member_id'), recorded_at)
    WHERE type = 'MemberJoined';
