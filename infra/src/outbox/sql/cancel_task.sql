-- The task's email may not go ($1 row, $2 reason). When its consent ($5) is what stopped it
-- ($6), every other pending email of the member ($3, $4) that consent allowed is cancelled
-- too, except rows other workers hold (they reach the same verdict).
UPDATE outbox
   SET status = 'cancelled', cancel_reason = $2, updated_at = now()
 WHERE id = $1
    OR ($6 AND id IN (SELECT id FROM outbox
                       WHERE clinic = $3 AND member_id = $4 AND consent_id = $5
                         AND status = 'pending'
                         FOR UPDATE SKIP LOCKED))
