-- The roster entries a page's joins and leaves name ($1, $2, $3: clinics, groups, members).
SELECT r.clinic, r.group_id, r.member_id, r.joined_at, r.joined_position
  FROM unnest($1::text[], $2::uuid[], $3::uuid[]) AS k (clinic, group_id, member_id)
  JOIN group_rosters r
    ON r.clinic = k.clinic AND r.group_id = k.group_id AND r.member_id = k.member_id
