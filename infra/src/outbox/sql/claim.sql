-- Claims one task ($1: the lease in milliseconds; $2: the kinds of email this build sends, so
-- a kind only a newer release writes, met during a rolling upgrade, is left for that release
-- instead of being leased and counted as failed here) and reads its member's stream, in one short
-- statement. The oldest due pending email, locked FOR UPDATE SKIP LOCKED (rows other workers
-- are claiming are passed over, so concurrent workers never take the same email), is leased:
-- its next_attempt_at moves to the end of the lease (no one else finds it due meanwhile; the
-- value is the claim token) and the attempt is counted. Uses outbox_claim_idx. One row per
-- event of the member's stream, in version order, each repeating the claimed row.
-- `no_flush`: this statement's own (implicit) transaction commits without waiting for the WAL
-- flush (see "Bookkeeping without the WAL flush" in worker.rs).
WITH no_flush AS (SELECT set_config('synchronous_commit', 'off', true)),
claimed AS (
    UPDATE outbox o
       SET next_attempt_at = now() + $1::bigint * interval '1 millisecond',
           attempts = o.attempts + 1,
           updated_at = now()
      FROM (SELECT id
              FROM outbox
             WHERE status = 'pending' AND next_attempt_at <= now() AND kind = ANY($2::text[])
             ORDER BY next_attempt_at
             LIMIT 1
               FOR UPDATE SKIP LOCKED) due,
           no_flush
     WHERE o.id = due.id
    RETURNING o.id, o.next_attempt_at, o.clinic, o.member_id, o.kind, o.recipient,
              o.consent_id, o.event_version, o.attempts, o.send_before, o.message_id
)
SELECT c.id AS outbox_id, c.next_attempt_at, c.clinic AS outbox_clinic, c.member_id, c.kind,
       c.recipient, c.consent_id, c.event_version AS outbox_event_version, c.attempts,
       c.send_before, c.message_id,
       e.position, e.transaction_id::text::bigint AS transaction_id, e.clinic, e.stream_id,
       e.version, e.event_id, e.type, e.schema_version, e.data, e.metadata, e.recorded_at,
       e.prev_hash, e.hash
  FROM claimed c
  LEFT JOIN events e ON e.clinic = c.clinic AND e.stream_id = 'member-' || c.member_id::text
 ORDER BY e.version
