-- A group of single-event appends to distinct streams (group_commit.rs): the function
-- `append_group` (migration 20261126000010, which says what it checks and returns).
SELECT place, stream_version, event_position FROM append_group($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
