-- The mail outbox: every email the service is to send, one row each, written by the `outbox`
-- projection from the event log (infra/src/outbox/projection.rs) and delivered by the outbox
-- worker (infra/src/outbox/worker.rs). See README "The mail outbox".
--
-- Unlike the read models, the outbox is NOT derived data that a rebuild may recreate: a row
-- records whether an email went out, which no replay can know again. It is never rebuilt
-- (`prepare_read_model_rebuild` refuses it), rows are never deleted, and the projection only
-- ever inserts rows (ON CONFLICT DO NOTHING) and cancels pending ones.

-- One row per email. The causing event and the kind of email identify it: the projection
-- inserts with ON CONFLICT DO NOTHING on `outbox_event_kind_key`, so a crash, a retried page or
-- a reset checkpoint never creates a second row for the same email.
CREATE TABLE outbox (
    -- Derived from (event id, kind) (UUID v5), so the row's id, and with it the email's
    -- Message-ID, is the same whichever process or replay writes it.
    id               uuid        PRIMARY KEY,
    clinic           text        NOT NULL CHECK (clinic <> ''),
    -- The event that caused the email, and its version in the member's stream (cancellations
    -- by a later event of the stream touch only rows of earlier versions).
    event_id         uuid        NOT NULL,
    event_version    bigint      NOT NULL CHECK (event_version >= 1),
    member_id        uuid        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN
        ('aftercare_welcome', 'follow_up_due', 'outreach_notice')),
    -- The address the email goes to: the member's (from MemberReferred) for member emails,
    -- the primary counselor's (from CLINIC_STAFF_EMAILS) for outreach notices. Personal:
    -- NULL once the member is erased.
    recipient        text,
    -- The `email_outreach` consent that allowed a member email (42 CFR Part 2: each sent email
    -- records its authority). Staff notices disclose nothing outside the program: no consent.
    consent_id       uuid,
    status           text        NOT NULL DEFAULT 'pending' CHECK (status IN
        ('pending', 'sent', 'cancelled', 'dead')),
    -- Why a row was cancelled (never personal data).
    cancel_reason    text        CHECK (cancel_reason IN
        ('consent_revoked', 'consent_expired', 'member_erased', 'stale')),
    -- Delivery attempts made so far, and when the next may be made (backoff).
    attempts         integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL,
    -- Not sent by then, it is cancelled as stale: a replay of an old log, or a long outage,
    -- never mails news of long ago.
    send_before      timestamptz NOT NULL,
    -- The last failure as a category and SMTP code only (e.g. `transient 451`,
    -- `connection`): never the server's text, which may quote the recipient.
    last_error       text,
    -- The Message-ID header: stable per row, so a resend after an unknown outcome (a crash
    -- between the server's acceptance and our commit) can be recognised as the same email.
    message_id       text        NOT NULL UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    CONSTRAINT outbox_event_kind_key UNIQUE (event_id, kind),
    -- A member email always records its consent; a staff notice never has one.
    CONSTRAINT outbox_consent_recorded CHECK ((kind = 'outreach_notice') = (consent_id IS NULL)),
    -- A pending row has somewhere to go.
    CONSTRAINT outbox_pending_has_recipient CHECK (status <> 'pending' OR recipient IS NOT NULL),
    CONSTRAINT outbox_sent_has_time CHECK ((status = 'sent') = (sent_at IS NOT NULL)),
    CONSTRAINT outbox_cancelled_has_reason CHECK ((status = 'cancelled') = (cancel_reason IS NOT NULL))
);

-- Claiming: the worker takes the oldest due pending row (`FOR UPDATE SKIP LOCKED`).
CREATE INDEX outbox_claim_idx ON outbox (next_attempt_at) WHERE status = 'pending';
-- Cancelling a member's pending emails (revocation, erasure).
CREATE INDEX outbox_member_idx ON outbox (clinic, member_id, event_version);
-- The admins' dead letters, per clinic, newest first.
CREATE INDEX outbox_dead_idx ON outbox (clinic, updated_at DESC) WHERE status = 'dead';

-- The staff directory the outbox projection reads to address outreach notices: staff `sub` to
-- email address, per clinic (`*`: any clinic). It mirrors CLINIC_STAFF_EMAILS and is replaced
-- whole by each process that starts the outbox (`outbox::sync_staff_directory`), so the
-- projection, a pure fold in a database transaction, reads it like any other input. Empty
-- when the variable is unset: outreach then stays a dashboard item, with no email.
CREATE TABLE outbox_staff_emails (
    clinic  text NOT NULL CHECK (clinic <> ''),
    sub     text NOT NULL CHECK (sub <> ''),
    address text NOT NULL CHECK (address LIKE '%_@_%'),
    PRIMARY KEY (clinic, sub)
);
