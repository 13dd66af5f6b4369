-- Every roster entry of the groups whose v1 sessions a page folds ($1, $2: clinics, groups):
-- schema v1 listed only who was present, so the rest of the roster is recorded absent.
SELECT r.clinic, r.group_id, r.member_id, r.joined_at, r.joined_position
  FROM unnest($1::text[], $2::uuid[]) AS k (clinic, group_id)
  JOIN group_rosters r
    ON r.clinic = k.clinic AND r.group_id = k.group_id
