-- The access log's index of listed members (GIN) keeps up to 16 MB of new entries in its
-- pending list, instead of the default 4 MB, before an INSERT must merge them into the index;
-- the API's access-log writer merges them every half second (`gin_clean_pending_list`,
-- infra/src/access_log/writer.rs), off the requests' path.
--
-- Why: a read is answered only once it is logged, and the INSERT that found the pending list
-- full first merged it into the index, holding every request of its batch for up to 52 ms.
-- Measured on the API benchmark with the member page served from memory (README "Fifteenth
-- session"): p99 47 ms with those merges, 16 ms with the index dropped, 16 ms with this limit
-- and a merge each second. The index stays: it is how auditors find a member's list reads.
-- Without the writer's merges (a role that does not own the index may not run them),
-- autovacuum and the INSERTs merge up to 16 MB at a time, four times the default (the writer
-- warns and names the remedies: own the index, or reset the limit).
--
-- The ALTER locks the index exclusively, and every logged read waits behind it: if the lock is
-- not granted within 5 s (a long auditor query holding the table), the migration fails rather
-- than hold the reads queued behind it any longer; the service does not start, and starting it
-- again retries.
SET LOCAL lock_timeout = '5s';
ALTER INDEX access_log_member_lists_idx SET (gin_pending_list_limit = 16384);
