-- A page of a clinic's access log, newest first, one entry per member read: a list row (a
-- dashboard query) is expanded into its members, `ordinal` giving each one's place in it (1 for
-- a single-member row). $1 clinic, $2 only this member, $3 only break-glass reads, $4/$5 the
-- cursor (entries before id $4, ordinal $5), $6 page size.
SELECT l.id, u.ordinal::integer AS ordinal, l.at, l.actor, l.role, u.member_id, l.action,
       l.category, l.allowed, l.operation, l.correlation_id, l.break_glass_reason
  FROM access_log l
 CROSS JOIN LATERAL unnest(coalesce(l.member_ids, ARRAY[l.member_id]))
       WITH ORDINALITY AS u(member_id, ordinal)
 WHERE l.clinic = $1
   AND ($2::uuid IS NULL OR l.member_id = $2 OR l.member_ids @> ARRAY[$2::uuid])
   AND ($2::uuid IS NULL OR u.member_id = $2)
   AND (NOT $3 OR l.break_glass_reason IS NOT NULL)
   -- The row bound lets the index stop at the cursor; the pair orders within a list row.
   AND ($4::bigint IS NULL OR l.id <= $4)
   AND ($4::bigint IS NULL OR (l.id, u.ordinal) < ($4, $5::bigint))
 ORDER BY l.id DESC, u.ordinal DESC
 LIMIT $6
