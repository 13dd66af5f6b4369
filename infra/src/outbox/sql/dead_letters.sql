-- A clinic's dead letters, most recent first ($1 clinic, $2 limit). No recipient: admins find
-- the member by id.
SELECT id, member_id, kind, attempts, last_error, message_id, created_at, updated_at
  FROM outbox
 WHERE clinic = $1 AND status = 'dead'
 ORDER BY updated_at DESC, id
 LIMIT $2
