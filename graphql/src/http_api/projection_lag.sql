-- How far each projection's checkpoint is behind the log's last position (0 when caught up).
SELECT c.projection,
       greatest(coalesce((SELECT max(position) FROM events), 0) - c.position, 0)::bigint AS lag
  FROM projection_checkpoints c
 ORDER BY c.projection
