-- A page of a clinic's members in referral order: the function `members_page` (migration
-- 20261126000009, which says why it is a function and what it returns), sorted here because a
-- function's rows come in no promised order. Parameters as the function's.
SELECT * FROM members_page($1, $2, $3, $4, $5, $6, $7, $8) ORDER BY referred_position
