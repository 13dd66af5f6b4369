-- How far each projection ($1: every projection's name) is behind the log's last position; a
-- projection that has not started yet is behind by the whole log.
SELECT p.name,
       greatest(coalesce((SELECT max(position) FROM events), 0) - coalesce(c.position, 0), 0)::bigint
  FROM unnest($1::text[]) AS p(name)
  LEFT JOIN projection_checkpoints c ON c.projection = p.name
 ORDER BY p.name
