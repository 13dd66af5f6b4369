-- The SMTP server accepted the email ($1 row, $2 claim token). Recorded even if the row was
-- cancelled while the email was in flight: it did go out.
-- `no_flush`: this statement's own (implicit) transaction commits without waiting for the WAL
-- flush (see "Bookkeeping without the WAL flush" in worker.rs).
WITH no_flush AS (SELECT set_config('synchronous_commit', 'off', true))
UPDATE outbox
   SET status = 'sent', sent_at = now(), cancel_reason = NULL, last_error = NULL,
       updated_at = now()
  FROM no_flush
 WHERE id = $1 AND next_attempt_at = $2 AND status IN ('pending', 'cancelled')
