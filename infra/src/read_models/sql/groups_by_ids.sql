-- Groups by id (batch loading).
SELECT g.group_id, g.name, g.model, g.facilitator, g.capacity, g.schedule, g.alumni, g.online,
       g.closed, g.version, g.roster_size, g.attended_count, g.recorded_count, g.formed_at,
       g.formed_position
  FROM group_summaries g
 WHERE g.clinic = $1 AND g.group_id = ANY ($2)
 ORDER BY g.formed_position
