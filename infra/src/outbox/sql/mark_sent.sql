-- The SMTP server accepted the email ($1 row, $2 attempts made).
UPDATE outbox
   SET status = 'sent', sent_at = now(), attempts = $2, last_error = NULL, updated_at = now()
 WHERE id = $1
