-- For the rest of the transaction, unqualified read-model tables are those of the rebuild's
-- shadow schemas ($1, e.g. `rebuild_members, public`).
SELECT set_config('search_path', $1, true)
