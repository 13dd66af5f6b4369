-- A pending member email is cancelled with `no_address` when the member has no email address
-- on file any more: a change of details (MemberDetailsChanged) removed it after the email was
-- queued. A new address instead moves the emails not yet sent to it (the outbox projection:
-- infra/src/outbox/fold.rs, `OutboxChange::Readdress`).
--
-- Replacing the check locks the outbox while the new one reads the table (one row per email
-- ever queued: a short scan). If the lock is not granted within 5 s, the migration fails
-- rather than queue the outbox's writers behind it; starting the service again retries.
SET LOCAL lock_timeout = '5s';
ALTER TABLE outbox DROP CONSTRAINT outbox_cancel_reason_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_cancel_reason_check CHECK (cancel_reason IN
    ('consent_revoked', 'consent_expired', 'member_erased', 'stale', 'no_address'));
