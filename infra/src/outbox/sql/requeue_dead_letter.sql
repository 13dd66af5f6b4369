-- Puts a dead letter back in the queue ($1 clinic, $2 row): an admin fixed what killed it (the
-- SMTP settings, a server that was down past every retry). Its attempts count from 0 again,
-- and the send-time checks (consent, erasure, the 14-day window) still decide whether it goes.
-- Returns the row's id if it was a dead letter of that clinic with a recipient still on file,
-- still inside its send window.
UPDATE outbox
   SET status = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now()
 WHERE clinic = $1 AND id = $2 AND status = 'dead' AND recipient IS NOT NULL
   AND send_before > now()
RETURNING id
