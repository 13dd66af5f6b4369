-- An erasure: every pending email about the member is cancelled, and the member's address is
-- removed from every row of theirs, sent or not ($1 clinics, $2 members, $3 the erasing
-- event's versions). Staff notices keep the counselor's address.
UPDATE outbox o
   SET status = CASE WHEN o.status = 'pending' THEN 'cancelled' ELSE o.status END,
       cancel_reason = CASE WHEN o.status = 'pending' THEN 'member_erased' ELSE o.cancel_reason END,
       recipient = CASE WHEN o.kind = 'outreach_notice' THEN o.recipient END,
       updated_at = now()
  FROM unnest($1::text[], $2::uuid[], $3::bigint[]) AS c(clinic, member_id, before_version)
 WHERE o.clinic = c.clinic
   AND o.member_id = c.member_id
   AND o.event_version < c.before_version
