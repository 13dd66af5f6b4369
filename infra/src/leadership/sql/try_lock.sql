-- Leadership: a session-level advisory lock in the service's own key space ($1), named by $2.
-- Held until released or until the connection ends (a dead process loses it at once).
SELECT pg_try_advisory_lock($1, hashtext($2))
