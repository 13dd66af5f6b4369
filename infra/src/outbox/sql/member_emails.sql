-- Every email about one member, oldest first, with the consent that allowed it ($1 clinic,
-- $2 member). No recipient: the address is personal data, and gone after an erasure anyway.
SELECT id, kind, status, consent_id, cancel_reason, created_at, sent_at
  FROM outbox
 WHERE clinic = $1 AND member_id = $2
 ORDER BY created_at, id
