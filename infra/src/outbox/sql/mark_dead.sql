-- Sending failed for the last time, or for good: the email is dead-lettered for admins
-- ($1 row, $2 claim token, $3 the failure's category and code).
UPDATE outbox
   SET status = 'dead', last_error = $3, updated_at = now()
 WHERE id = $1 AND next_attempt_at = $2 AND status = 'pending'
