-- One task: the oldest due pending email, locked until the task's transaction ends. SKIP
-- LOCKED: rows other workers hold are passed over, so concurrent workers (tasks, processes)
-- never take the same email. Uses outbox_claim_idx.
SELECT id, clinic, member_id, kind, recipient, consent_id, attempts, send_before, message_id
  FROM outbox
 WHERE status = 'pending' AND next_attempt_at <= now()
 ORDER BY next_attempt_at
 LIMIT 1
   FOR UPDATE SKIP LOCKED
