-- Sending failed; try again after the backoff ($1 row, $2 claim token, $3 delay in
-- milliseconds, $4 the failure's category and code, never the server's text).
UPDATE outbox
   SET next_attempt_at = now() + $3::bigint * interval '1 millisecond',
       last_error = $4,
       updated_at = now()
 WHERE id = $1 AND next_attempt_at = $2 AND status = 'pending'
