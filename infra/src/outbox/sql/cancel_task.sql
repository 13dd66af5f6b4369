-- The task's email may not go ($1 row, $2 reason, $7 claim token). When its consent ($5) is
-- what stopped it ($6), every other pending email of the member ($3, $4) that consent allowed
-- is cancelled too, except rows being claimed this instant (their worker reaches the same
-- verdict).
-- `no_flush`: this statement's own (implicit) transaction commits without waiting for the WAL
-- flush (see "Bookkeeping without the WAL flush" in worker.rs).
WITH no_flush AS (SELECT set_config('synchronous_commit', 'off', true))
UPDATE outbox
   SET status = 'cancelled', cancel_reason = $2, updated_at = now()
  FROM no_flush
 WHERE (id = $1 AND next_attempt_at = $7 AND status = 'pending')
    OR ($6 AND id IN (SELECT id FROM outbox
                       WHERE clinic = $3 AND member_id = $4 AND consent_id = $5
                         AND status = 'pending' AND id <> $1
                         FOR UPDATE SKIP LOCKED))
