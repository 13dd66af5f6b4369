-- Where the projection is in the log, locked until the transaction ends: the projection's write
-- lock. Every page and every rebuild swap takes it before touching a read-model table, so two
-- writers of one projection serialise here and the second sees the first's checkpoint.
SELECT transaction_id, position FROM projection_checkpoints WHERE projection = $1 FOR UPDATE
