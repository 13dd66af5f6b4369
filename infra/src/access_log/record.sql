-- One row per entry. $4 is a single member or NULL; a list's members are the slice
-- $11[$12 : $12 + $13 - 1] of one flat array (PostgreSQL arrays cannot be ragged).
INSERT INTO access_log (clinic, actor, role, member_id, member_ids, action, category, allowed,
                        operation, correlation_id, break_glass_reason)
SELECT u.clinic, u.actor, u.role, u.member_id,
       CASE WHEN u.list_len IS NOT NULL
            THEN ($11::uuid[])[u.list_start : u.list_start + u.list_len - 1]
       END,
       u.action, u.category, u.allowed, u.operation, u.correlation_id, u.reason
  FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::bool[],
              $8::text[], $9::uuid[], $10::text[], $12::integer[], $13::integer[])
       AS u(clinic, actor, role, member_id, action, category, allowed, operation, correlation_id,
            reason, list_start, list_len)
