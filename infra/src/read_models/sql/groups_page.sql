-- A page of a clinic's groups in the order formed, with the total that match.
-- $1 clinic, $2 facilitator or NULL, $3 after this formed position, $4 rows to return.
-- Always one row at least: an empty page is one row with a NULL group_id and the total.
WITH matching AS (
    SELECT g.group_id, g.formed_position
      FROM group_summaries g
     WHERE g.clinic = $1 AND ($2::text IS NULL OR g.facilitator = $2)
)
SELECT t.total_count, p.*
  FROM (SELECT count(*) AS total_count FROM matching) t
  LEFT JOIN LATERAL (
      SELECT g.group_id, g.name, g.model, g.facilitator, g.capacity, g.schedule, g.alumni,
             g.online, g.closed, g.version, g.roster_size, g.attended_count, g.recorded_count,
             g.formed_at, g.formed_position
        FROM group_summaries g
       WHERE g.clinic = $1 AND ($2::text IS NULL OR g.facilitator = $2)
         AND g.formed_position > $3
       ORDER BY g.formed_position
       LIMIT $4
  ) p ON true
 ORDER BY p.formed_position
