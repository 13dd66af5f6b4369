-- The staff directory, replaced whole (the caller deleted the old rows in this transaction):
-- $1 clinics (or '*'), $2 staff subs, $3 addresses.
INSERT INTO outbox_staff_emails (clinic, sub, address)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
