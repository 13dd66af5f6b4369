-- Opens a page's transaction, in one round trip:
-- - synchronous_commit off: the checkpoint commits with the writes, so losing the last commits
--   in a crash only means applying those pages again; waiting for the WAL flush buys nothing;
-- - the newest migration applied, so that a process of an older release stops before folding
--   a page by out-of-date rules (and before its SQL meets tables a newer release changed).
--   This statement runs before the checkpoint lock, so it can miss a migration committing
--   meanwhile: storing the checkpoint checks again, after the lock.
SELECT set_config('synchronous_commit', 'off', true) AS synchronous_commit,
       (SELECT max(version) FROM _sqlx_migrations WHERE success) AS newest_migration
