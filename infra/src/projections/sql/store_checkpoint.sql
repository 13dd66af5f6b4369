-- Moves the checkpoint, in the transaction that applied the events up to it.
UPDATE projection_checkpoints
   SET transaction_id = $2, position = $3, updated_at = now()
 WHERE projection = $1
