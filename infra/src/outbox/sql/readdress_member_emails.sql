-- A change of the member's details gave them a new address: their emails to them not yet sent
-- (pending, or dead and so requeueable) caused by earlier events of their stream go to it ($1
-- clinics, $2 members, $3 the changing event's versions, $4 the new addresses). Staff notices
-- keep the counselor's address, a row whose address an erasure forgot stays without one, and a
-- row already at the address is left alone (a change of name or phone only touches nothing).
UPDATE outbox o
   SET recipient = c.recipient, updated_at = now()
  FROM unnest($1::text[], $2::uuid[], $3::bigint[], $4::text[])
       AS c(clinic, member_id, before_version, recipient)
 WHERE o.clinic = c.clinic
   AND o.member_id = c.member_id
   AND o.event_version < c.before_version
   AND o.status IN ('pending', 'dead')
   AND o.kind <> 'outreach_notice'
   AND o.recipient IS NOT NULL
   AND o.recipient IS DISTINCT FROM c.recipient
