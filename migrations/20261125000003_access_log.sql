-- Who read which member's record, when, how, and whether they were allowed (HIPAA audit
-- controls; 42 CFR Part 2). Written by the API for every read of a member's record by a person,
-- including refused attempts; read by auditors and admins. Append-only like `events`.
CREATE TABLE access_log (
    id                  bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    clinic              text        NOT NULL,
    at                  timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor               text        NOT NULL,
    role                text        NOT NULL,
    member_id           uuid        NOT NULL,
    -- read (one record), query (a list that returned it), export
    action              text        NOT NULL CHECK (action IN ('read', 'query', 'export')),
    -- profile, attendance, check_ins, consents, outcomes, disclosures, history
    category            text,
    allowed             boolean     NOT NULL,
    operation           text        NOT NULL,
    correlation_id      uuid        NOT NULL,
    break_glass_reason  text
);

CREATE INDEX access_log_clinic_member_idx ON access_log (clinic, member_id, id);
CREATE INDEX access_log_clinic_idx ON access_log (clinic, id);

CREATE TRIGGER access_log_no_update_or_delete
    BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER access_log_no_truncate
    BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
