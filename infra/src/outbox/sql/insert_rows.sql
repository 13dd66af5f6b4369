-- New outbox rows, set-based. A row whose id, (event id, kind) or Message-ID is already there
-- is left as it is: the same email is never queued twice, whatever re-runs the page.
INSERT INTO outbox (id, clinic, event_id, event_version, member_id, kind, recipient, consent_id,
                    next_attempt_at, send_before, message_id)
SELECT *
  FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::bigint[], $5::uuid[], $6::text[],
              $7::text[], $8::uuid[], $9::timestamptz[], $10::timestamptz[], $11::text[])
ON CONFLICT DO NOTHING
