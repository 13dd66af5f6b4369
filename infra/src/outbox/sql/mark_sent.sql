-- The SMTP server accepted the email ($1 row, $2 claim token, $3 the address it was sent to,
-- as claimed: a change of the member's address re-addressed after the claim does not make the
-- row say it went elsewhere). Recorded even if the row was cancelled while the email was in
-- flight: it did go out. An address removed meanwhile (by an erasure, or by a change of
-- details that removed it) stays removed: the row then records none.
-- `no_flush`: this statement's own (implicit) transaction commits without waiting for the WAL
-- flush (see "Bookkeeping without the WAL flush" in worker.rs).
WITH no_flush AS (SELECT set_config('synchronous_commit', 'off', true))
UPDATE outbox
   SET status = 'sent', sent_at = now(), cancel_reason = NULL, last_error = NULL,
       recipient = CASE WHEN recipient IS NOT NULL THEN $3 END,
       updated_at = now()
  FROM no_flush
 WHERE id = $1 AND next_attempt_at = $2 AND status IN ('pending', 'cancelled')
