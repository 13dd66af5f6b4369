-- Moves the checkpoint, in the transaction that applied the events up to it, and returns the
-- newest migration applied to the database as this statement sees it: after the checkpoint
-- lock was granted, so a migration that moved the checkpoint (a refold) is seen, and the
-- caller rolls the page back instead of committing what out-of-date rules folded.
UPDATE projection_checkpoints
   SET transaction_id = $2, position = $3, updated_at = now()
 WHERE projection = $1
RETURNING (SELECT max(version) FROM _sqlx_migrations WHERE success) AS newest_migration
