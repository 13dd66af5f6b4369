-- The SMTP server accepted the email ($1 row, $2 claim token). Recorded even if the row was
-- cancelled while the email was in flight: it did go out.
UPDATE outbox
   SET status = 'sent', sent_at = now(), cancel_reason = NULL, last_error = NULL,
       updated_at = now()
 WHERE id = $1 AND next_attempt_at = $2 AND status IN ('pending', 'cancelled')
