-- Sending failed; try again after the backoff ($1 row, $2 claim token, $3 delay in
-- milliseconds, $4 the failure's category and code, never the server's text).
-- `no_flush`: this statement's own (implicit) transaction commits without waiting for the WAL
-- flush (see "Bookkeeping without the WAL flush" in worker.rs).
WITH no_flush AS (SELECT set_config('synchronous_commit', 'off', true))
UPDATE outbox
   SET next_attempt_at = now() + $3::bigint * interval '1 millisecond',
       last_error = $4,
       updated_at = now()
  FROM no_flush
 WHERE id = $1 AND next_attempt_at = $2 AND status = 'pending'
