-- The summaries of the groups a page's events touch ($1, $2: clinics and group ids).
SELECT g.clinic, g.group_id, g.name, g.model, g.facilitator, g.capacity, g.schedule, g.alumni,
       g.online, g.closed, g.version, g.roster_size, g.attended_count, g.recorded_count,
       g.formed_at, g.formed_position
  FROM unnest($1::text[], $2::uuid[]) AS k (clinic, group_id)
  JOIN group_summaries g ON g.clinic = k.clinic AND g.group_id = k.group_id
