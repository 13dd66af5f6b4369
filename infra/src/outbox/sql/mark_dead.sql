-- Sending failed for the last time, or for good: the email is dead-lettered for admins
-- ($1 row, $2 claim token, $3 the failure's category and code).
-- `no_flush`: this statement's own (implicit) transaction commits without waiting for the WAL
-- flush (see "Bookkeeping without the WAL flush" in worker.rs).
WITH no_flush AS (SELECT set_config('synchronous_commit', 'off', true))
UPDATE outbox
   SET status = 'dead', last_error = $3, updated_at = now()
  FROM no_flush
 WHERE id = $1 AND next_attempt_at = $2 AND status = 'pending'
