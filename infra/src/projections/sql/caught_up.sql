-- Whether every projection in $1 has applied the event at position $2: its checkpoint is at or
-- after that event in commit-safe (transaction id, position) order. An unknown position (or a
-- position at or below 0) needs no waiting.
WITH target AS (
    SELECT transaction_id::text::bigint AS transaction_id, position FROM events WHERE position = $2
)
SELECT NOT EXISTS (SELECT 1 FROM target)
    OR (SELECT count(*)
          FROM projection_checkpoints c, target t
         WHERE c.projection = ANY ($1)
           AND (c.transaction_id, c.position) >= (t.transaction_id, t.position))
       = cardinality($1)
