-- The outbox's depth: pending emails, those due now, and dead letters (each counted on its
-- partial index).
SELECT (SELECT count(*) FROM outbox WHERE status = 'pending') AS pending,
       (SELECT count(*) FROM outbox WHERE status = 'pending' AND next_attempt_at <= now()) AS due,
       (SELECT count(*) FROM outbox WHERE status = 'dead') AS dead
