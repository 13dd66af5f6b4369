-- Opens a page's transaction, in one round trip:
-- - synchronous_commit off: the checkpoint commits with the writes, so losing the last commits
--   in a crash only means applying those pages again; waiting for the WAL flush buys nothing;
-- - the newest migration applied, so that a process of an older release stops before folding
--   a page by out-of-date rules. A migration that refolds resets the checkpoint, which the
--   checkpoint lock that follows reads afresh: a page read before such a migration committed
--   finds the checkpoint moved and is read again, and that reading sees the migration.
SELECT set_config('synchronous_commit', 'off', true) AS synchronous_commit,
       (SELECT max(version) FROM _sqlx_migrations WHERE success) AS newest_migration
