-- A revocation, or a change of details that removed the member's address: the member's pending
-- emails to the member (not staff notices) caused by earlier events of their stream are
-- cancelled ($1 clinics, $2 members, $3 the cancelling event's versions, $4 reasons); so are
-- their dead letters, which an admin could otherwise requeue and send after the member said no.
-- An address the member no longer has is not kept on the rows (`no_address`).
-- A row two changes of one page reach is cancelled by the earlier, as if the page's events had
-- been applied one by one (an UPDATE joined to both would apply either).
UPDATE outbox o
   SET status = 'cancelled', cancel_reason = first.reason,
       recipient = CASE WHEN first.reason = 'no_address' THEN NULL ELSE o.recipient END,
       updated_at = now()
  FROM (SELECT DISTINCT ON (r.id) r.id, c.reason
          FROM unnest($1::text[], $2::uuid[], $3::bigint[], $4::text[])
               AS c(clinic, member_id, before_version, reason)
          JOIN outbox r ON r.clinic = c.clinic
                       AND r.member_id = c.member_id
                       AND r.event_version < c.before_version
         WHERE r.status IN ('pending', 'dead')
           AND r.kind <> 'outreach_notice'
         ORDER BY r.id, c.before_version) AS first
 WHERE o.id = first.id
   -- Checked again on the row as it is when locked: one the worker marked sent meanwhile stays
   -- sent.
   AND o.status IN ('pending', 'dead')
