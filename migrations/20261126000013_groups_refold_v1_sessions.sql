-- The groups projection counts the absences of a schema-v1 session from the roster on the day
-- it was held, as the domain does (GroupState::roster_at): it replays the group's stream for
-- it (infra/src/projections/groups/store.rs). Before, it took today's roster from the read
-- model, so a v1 session imported after a member left (or left and rejoined) missed that
-- member's absence, which the at-risk count, the attendance rate and stopped attending read.
--
-- Only a log that holds v1 sessions can have such rows: then the groups projection's tables
-- are emptied and its checkpoint set back to the start, so the next `clinic serve` folds the
-- log again with the new loader (see migration 12 and README "Rebuilding"). Other logs keep
-- their tables.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM events WHERE type = 'SessionHeld' AND schema_version = 1) THEN
        TRUNCATE group_summaries, group_rosters, group_sessions, session_attendance;
        UPDATE projection_checkpoints
           SET transaction_id = 0, position = 0, updated_at = now()
         WHERE projection = 'groups';
    END IF;
END
$$;
