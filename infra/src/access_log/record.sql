INSERT INTO access_log (clinic, actor, role, member_id, action, category, allowed, operation,
                        correlation_id, break_glass_reason)
SELECT $1, u.actor, u.role, u.member_id, u.action, u.category, u.allowed, u.operation,
       u.correlation_id, u.reason
  FROM unnest($2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::bool[], $8::text[],
              $9::uuid[], $10::text[])
       AS u(actor, role, member_id, action, category, allowed, operation, correlation_id, reason)
