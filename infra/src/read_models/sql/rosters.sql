-- The rosters of several groups (batch loading), in the order members joined.
SELECT r.group_id, r.member_id, r.joined_at
  FROM group_rosters r
 WHERE r.clinic = $1 AND r.group_id = ANY ($2)
 ORDER BY r.group_id, r.joined_position
