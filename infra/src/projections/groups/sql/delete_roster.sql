-- Removes the roster entries of members who left ($1, $2, $3: clinics, groups, members).
DELETE FROM group_rosters r
 USING unnest($1::text[], $2::uuid[], $3::uuid[]) AS k (clinic, group_id, member_id)
 WHERE r.clinic = k.clinic AND r.group_id = k.group_id AND r.member_id = k.member_id
