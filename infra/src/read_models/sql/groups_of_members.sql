-- The groups several members are on now (batch loading), in the order they joined.
SELECT r.group_id, r.member_id, r.joined_at
  FROM group_rosters r
 WHERE r.clinic = $1 AND r.member_id = ANY ($2)
 ORDER BY r.member_id, r.joined_position
