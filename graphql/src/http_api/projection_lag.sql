-- How many events each projection ($1: every projection's name) has yet to apply: those after
-- its checkpoint in the commit-safe order it reads in (transaction id, then position), as
-- `read_log_all.sql` pages them. Not `max(position)` minus the checkpoint: an event that commits
-- after one with a higher position would make that read 0 while it waits, and stay above 0
-- once everything is applied. A projection that has not started yet has the whole log to go.
-- Counted on `events_commit_order_idx`, at most 10,000 (a few milliseconds whatever the lag:
-- `/metrics` is scraped without a token): 10,000 reads "that far or more".
SELECT p.name,
       (SELECT count(*)
          FROM (SELECT 1
                  FROM events e
                 WHERE (e.transaction_id, e.position)
                       > (coalesce(c.transaction_id, 0)::text::xid8, coalesce(c.position, 0))
                 LIMIT 10000) AS behind)::bigint
  FROM unnest($1::text[]) AS p(name)
  LEFT JOIN projection_checkpoints c ON c.projection = p.name
 ORDER BY p.name
