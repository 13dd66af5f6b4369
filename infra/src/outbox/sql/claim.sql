-- Claims one task ($1: the lease in milliseconds), in one short statement: the oldest due
-- pending email, locked FOR UPDATE SKIP LOCKED (rows other workers are claiming are passed
-- over, so concurrent workers never take the same email), is leased: its next_attempt_at moves
-- to the end of the lease (no one else finds it due meanwhile; the value is the claim token)
-- and the attempt is counted. Uses outbox_claim_idx.
UPDATE outbox o
   SET next_attempt_at = now() + $1::bigint * interval '1 millisecond',
       attempts = o.attempts + 1,
       updated_at = now()
  FROM (SELECT id
          FROM outbox
         WHERE status = 'pending' AND next_attempt_at <= now()
         ORDER BY next_attempt_at
         LIMIT 1
           FOR UPDATE SKIP LOCKED) due
 WHERE o.id = due.id
RETURNING o.id, o.next_attempt_at, o.clinic, o.member_id, o.kind, o.recipient, o.consent_id,
          o.attempts, o.send_before, o.message_id
