-- Merges the pending entries of the access log's index of listed members into the index, unless
-- another process is merging them now (a second merge would only queue behind the first, on a
-- connection of its API's pool). $1: the service's advisory-lock key space.
SELECT CASE
           WHEN pg_try_advisory_xact_lock($1, hashtext('access_log_member_lists_idx merge'))
           THEN gin_clean_pending_list('access_log_member_lists_idx')
       END
