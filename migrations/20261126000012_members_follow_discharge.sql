-- The members projection follows the domain at a discharge and a readmission, and the read
-- model is refolded from the log so that what it already holds follows too.
--
-- Why: the domain (MemberState::evolve) closes the check-ins still scheduled at a discharge
-- (nobody marks them missed; a member no longer in treatment gets no outreach for them) and
-- restarts the run of missed check-ins at a discharge and at a readmission. The projection did
-- neither: discharged members with two missed check-ins stayed on the outreach list for good
-- (476 of them on the API benchmark's clinic), a readmitted member carried the old episode's
-- run, and the scheduler kept picking check-ins closed by a discharge, which the domain
-- refuses to mark missed, every tick: enough of them would fill its batch and starve the real
-- ones.
--
-- `member_check_ins` gains `closed_by_discharge`, and the scheduler's index leaves closed
-- check-ins out. The projection's create and index functions (used by `clinic rebuild` for its
-- shadow tables) are replaced to match, as migration 2 asks of a change to a read-model table.

ALTER TABLE member_check_ins ADD COLUMN closed_by_discharge boolean NOT NULL DEFAULT false;

DROP INDEX member_check_ins_open_idx;
CREATE INDEX member_check_ins_open_idx ON member_check_ins (due_at)
    WHERE status = 'scheduled' AND NOT closed_by_discharge;

CREATE OR REPLACE FUNCTION index_members_read_model(target_schema text) RETURNS void
LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
    PERFORM set_config('search_path', target_schema, true);

    CREATE INDEX member_summaries_list_idx
        ON member_summaries (clinic, referred_position);

    CREATE INDEX member_summaries_stage_idx
        ON member_summaries (clinic, stage, referred_position);

    -- Outreach items: 2 or more missed check-ins in a row.
    CREATE INDEX member_summaries_outreach_idx
        ON member_summaries (clinic, referred_position) WHERE consecutive_missed_check_ins >= 2;

    CREATE INDEX member_check_ins_member_idx ON member_check_ins (clinic, member_id, due_at);

    -- The scheduler: check-ins past due that someone must mark missed, every clinic.
    CREATE INDEX member_check_ins_open_idx ON member_check_ins (due_at)
        WHERE status = 'scheduled' AND NOT closed_by_discharge;

    CREATE INDEX member_follow_ups_member_idx ON member_follow_ups (clinic, member_id, due_at);

    -- The scheduler: planned follow-ups whose day has come, every clinic.
    CREATE INDEX member_follow_ups_planned_idx ON member_follow_ups (due_at)
        WHERE status = 'planned';

    -- The staff list: open follow-ups by due time.
    CREATE INDEX member_follow_ups_open_idx ON member_follow_ups (clinic, due_at)
        WHERE status <> 'completed';
END
$$;

CREATE OR REPLACE FUNCTION create_members_read_model(target_schema text, with_indexes boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
    -- Unqualified names below are created in `target_schema` (the setting is restored when
    -- the function returns).
    PERFORM set_config('search_path', target_schema, true);

    -- One row per member: what the member list and the member page show.
    CREATE TABLE member_summaries (
        clinic                       text        NOT NULL,
        member_id                    uuid        NOT NULL,
        -- Personal: scrubbed (placeholder name, no email, no counselor) when erased.
        name                         text        NOT NULL,
        email                        text,
        stage                        text        NOT NULL CHECK (stage IN
            ('referred', 'intake', 'in_treatment', 'discharged', 'aftercare', 'alumni')),
        -- Set while in treatment only.
        level_of_care                text        CHECK (level_of_care IN ('withdrawal_management',
            'residential', 'partial_hospitalization', 'intensive_outpatient', 'outpatient')),
        primary_counselor            text,
        -- The member stream's version: clients pass it back as `expectedVersion`.
        version                      bigint      NOT NULL,
        consecutive_missed_check_ins integer     NOT NULL DEFAULT 0,
        last_missed_due_at           timestamptz,
        erased                       boolean     NOT NULL DEFAULT false,
        referred_at                  timestamptz NOT NULL,
        -- The log position of MemberReferred: the stable order of member lists (keyset
        -- pagination cursor).
        referred_position            bigint      NOT NULL,
        -- When the last event applied was recorded.
        updated_at                   timestamptz NOT NULL,
        PRIMARY KEY (clinic, member_id)
    );

    -- One row per scheduled check-in.
    CREATE TABLE member_check_ins (
        clinic       text        NOT NULL,
        check_in_id  uuid        NOT NULL,
        member_id    uuid        NOT NULL,
        due_at       timestamptz NOT NULL,
        channel      text        NOT NULL CHECK (channel IN ('call', 'app', 'in_person')),
        status       text        NOT NULL CHECK (status IN ('scheduled', 'completed', 'missed')),
        completed_at timestamptz,
        -- Still scheduled when the member was discharged: closed with the episode, never
        -- marked missed (the domain's CheckIn::closed_by_discharge).
        closed_by_discharge boolean NOT NULL DEFAULT false,
        PRIMARY KEY (clinic, check_in_id)
    );

    -- One row per planned alumni follow-up. A readmission deletes the previous episode's
    -- follow-ups still planned (the domain drops them from the member's state, with no event).
    CREATE TABLE member_follow_ups (
        clinic       text        NOT NULL,
        follow_up_id uuid        NOT NULL,
        member_id    uuid        NOT NULL,
        day_offset   integer     NOT NULL,
        due_at       timestamptz NOT NULL,
        status       text        NOT NULL CHECK (status IN ('planned', 'due', 'completed')),
        outcome      text        CHECK (outcome IN
            ('abstinent', 'reduced_use', 'relapsed', 'readmitted', 'unreachable')),
        completed_at timestamptz,
        PRIMARY KEY (clinic, follow_up_id)
    );

    -- The pipeline board: members per stage, and per level of care while in treatment
    -- (`level_of_care` is '' for every other stage). Kept as counters so the board reads a
    -- handful of rows whatever the clinic's size. Pages add signed deltas with INSERT ... ON
    -- CONFLICT, whose proposed row is checked before the conflict is found: hence no CHECK
    -- (members >= 0) here; the fold's tests and the rebuild-equals-live test guard it.
    CREATE TABLE pipeline_counts (
        clinic        text   NOT NULL,
        stage         text   NOT NULL,
        level_of_care text   NOT NULL DEFAULT '',
        members       bigint NOT NULL,
        PRIMARY KEY (clinic, stage, level_of_care)
    );

    IF with_indexes THEN
        PERFORM index_members_read_model(target_schema);
    END IF;
END
$$;

-- Refold: the rows already folded carry the old counters and no closed check-ins. The
-- members projection's tables are emptied and its checkpoint set back to the start of the
-- log, so the runner of the next `clinic serve` folds every member event again with this fold
-- (at rebuild speed: pages of the projection's batch size). The mail outbox is another
-- projection with its own checkpoint and is not touched: no email is sent twice.
TRUNCATE member_summaries, member_check_ins, member_follow_ups, pipeline_counts;
UPDATE projection_checkpoints
   SET transaction_id = 0, position = 0, updated_at = now()
 WHERE projection = 'members';
