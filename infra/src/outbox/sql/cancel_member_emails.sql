-- A revocation, or a change of details that removed the member's address: the member's pending
-- emails to the member (not staff notices) caused by earlier events of their stream are
-- cancelled ($1 clinics, $2 members, $3 the cancelling event's versions, $4 reasons); so are
-- their dead letters, which an admin could otherwise requeue and send after the member said no.
-- An address the member no longer has is not kept on the rows (`no_address`).
UPDATE outbox o
   SET status = 'cancelled', cancel_reason = c.reason,
       recipient = CASE WHEN c.reason = 'no_address' THEN NULL ELSE o.recipient END,
       updated_at = now()
  FROM unnest($1::text[], $2::uuid[], $3::bigint[], $4::text[])
       AS c(clinic, member_id, before_version, reason)
 WHERE o.clinic = c.clinic
   AND o.member_id = c.member_id
   AND o.event_version < c.before_version
   AND o.status IN ('pending', 'dead')
   AND o.kind <> 'outreach_notice'
