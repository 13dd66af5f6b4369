SELECT id, at, actor, role, member_id, action, category, allowed, operation, correlation_id,
       break_glass_reason
  FROM access_log
 WHERE clinic = $1
   AND ($2::uuid IS NULL OR member_id = $2)
   AND (NOT $3 OR break_glass_reason IS NOT NULL)
   AND ($4::bigint IS NULL OR id < $4)
 ORDER BY id DESC
 LIMIT $5
