-- The read side: tables that projections fold the event log into, and the dashboards query.
--
-- Every read-model row carries its clinic, and every query filters on it. The tables are
-- derived data: `clinic rebuild` recreates them from the log (see README "Projections").
--
-- Each projection owns a set of tables, created by one function per projection so that a
-- rebuild can create the very same tables (same columns, constraints and index names) in a
-- shadow schema, fill them from position 0, and swap them in. A later migration that changes
-- a read-model table changes it in `public` AND replaces the projection's create (or index)
-- function.

-- Where each projection is in the log: the last event it applied, in commit-safe order
-- (transaction id, position; see `events`). Written in the same transaction as the
-- projection's read-model writes, so a crash never applies an event twice or skips one.
-- One row per projection, not per clinic: a projection reads every clinic's events.
CREATE TABLE projection_checkpoints (
    projection      text        PRIMARY KEY CHECK (projection ~ '^[a-z][a-z_]*$'),
    transaction_id  bigint      NOT NULL DEFAULT 0,
    position        bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The `members` projection: the member summary, check-ins, follow-ups and the pipeline board.
--
-- Its secondary indexes are created by their own function: a rebuild creates them once its
-- shadow tables are full, which is much cheaper than maintaining them row by row.
CREATE FUNCTION index_members_read_model(target_schema text) RETURNS void
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

    -- The scheduler: scheduled check-ins past due, every clinic.
    CREATE INDEX member_check_ins_open_idx ON member_check_ins (due_at) WHERE status = 'scheduled';

    CREATE INDEX member_follow_ups_member_idx ON member_follow_ups (clinic, member_id, due_at);

    -- The scheduler: planned follow-ups whose day has come, every clinic.
    CREATE INDEX member_follow_ups_planned_idx ON member_follow_ups (due_at)
        WHERE status = 'planned';

    -- The staff list: open follow-ups by due time.
    CREATE INDEX member_follow_ups_open_idx ON member_follow_ups (clinic, due_at)
        WHERE status <> 'completed';
END
$$;

CREATE FUNCTION create_members_read_model(target_schema text, with_indexes boolean DEFAULT true)
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

-- The `groups` projection: group summaries, rosters, sessions and attendance.
--
-- Its secondary indexes are created by their own function: a rebuild creates them once its
-- shadow tables are full, which is much cheaper than maintaining them row by row.
CREATE FUNCTION index_groups_read_model(target_schema text) RETURNS void
LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
    PERFORM set_config('search_path', target_schema, true);

    CREATE INDEX group_summaries_list_idx ON group_summaries (clinic, formed_position);

    CREATE INDEX group_summaries_facilitator_idx ON group_summaries (clinic, facilitator);

    CREATE INDEX group_rosters_member_idx ON group_rosters (clinic, member_id);

    CREATE INDEX group_sessions_group_idx ON group_sessions (clinic, group_id, recorded_position);

    -- Engagement: a member's attended sessions in a time window.
    CREATE INDEX session_attendance_attended_idx ON session_attendance (clinic, member_id, held_at)
        WHERE status IN ('present', 'late');

    -- Stopped attending: a member's run of absences from one group, newest first.
    CREATE INDEX session_attendance_streak_idx
        ON session_attendance (clinic, group_id, member_id, held_at, session_id) INCLUDE (status);
END
$$;

CREATE FUNCTION create_groups_read_model(target_schema text, with_indexes boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
    PERFORM set_config('search_path', target_schema, true);

    -- One row per group. `attended_count` / `recorded_count` is the attendance rate (present
    -- or late over all recorded attendance, after corrections).
    CREATE TABLE group_summaries (
        clinic          text        NOT NULL,
        group_id        uuid        NOT NULL,
        name            text        NOT NULL,
        model           text        NOT NULL CHECK (model IN ('psychoeducation',
            'skills_development', 'cognitive_behavioral', 'support', 'interpersonal_process',
            'integrated')),
        facilitator     text,
        capacity        integer     NOT NULL,
        schedule        text,
        alumni          boolean     NOT NULL,
        online          boolean     NOT NULL,
        closed          boolean     NOT NULL DEFAULT false,
        version         bigint      NOT NULL,
        roster_size     integer     NOT NULL DEFAULT 0 CHECK (roster_size >= 0),
        attended_count  bigint      NOT NULL DEFAULT 0 CHECK (attended_count >= 0),
        recorded_count  bigint      NOT NULL DEFAULT 0 CHECK (recorded_count >= attended_count),
        formed_at       timestamptz NOT NULL,
        -- The log position of GroupFormed: the stable order of group lists.
        formed_position bigint      NOT NULL,
        PRIMARY KEY (clinic, group_id)
    );

    -- Who is on each roster now.
    CREATE TABLE group_rosters (
        clinic          text        NOT NULL,
        group_id        uuid        NOT NULL,
        member_id       uuid        NOT NULL,
        joined_at       timestamptz NOT NULL,
        joined_position bigint      NOT NULL,
        PRIMARY KEY (clinic, group_id, member_id)
    );

    -- One row per session (scheduled, held or cancelled).
    CREATE TABLE group_sessions (
        clinic            text        NOT NULL,
        session_id        uuid        NOT NULL,
        group_id          uuid        NOT NULL,
        status            text        NOT NULL CHECK (status IN ('scheduled', 'held', 'cancelled')),
        starts_at         timestamptz,
        held_at           timestamptz,
        topic             text        NOT NULL,
        duration_minutes  integer,
        recorded_position bigint      NOT NULL,
        PRIMARY KEY (clinic, session_id)
    );

    -- One row per member per held session, status after corrections. The instants of
    -- attended sessions make "sessions attended in the trailing 7 days" a count at query
    -- time, correct as days pass without events.
    CREATE TABLE session_attendance (
        clinic     text        NOT NULL,
        session_id uuid        NOT NULL,
        member_id  uuid        NOT NULL,
        group_id   uuid        NOT NULL,
        held_at    timestamptz NOT NULL,
        status     text        NOT NULL CHECK (status IN ('present', 'late', 'excused', 'absent')),
        PRIMARY KEY (clinic, session_id, member_id)
    );

    IF with_indexes THEN
        PERFORM index_groups_read_model(target_schema);
    END IF;
END
$$;

SELECT create_members_read_model('public');
SELECT create_groups_read_model('public');

-- Rebuilding, step 1: an empty copy of a projection's tables in the shadow schema
-- `rebuild_<projection>` (dropped first if an earlier rebuild left it behind), with primary keys
-- but no secondary indexes yet. The rebuild fills it from position 0 while the live tables keep
-- serving.
CREATE FUNCTION prepare_read_model_rebuild(p_projection text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_shadow text := 'rebuild_' || p_projection;
BEGIN
    IF p_projection NOT IN ('members', 'groups') THEN
        RAISE EXCEPTION 'unknown projection %', p_projection USING ERRCODE = '22023';
    END IF;
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', v_shadow);
    EXECUTE format('CREATE SCHEMA %I', v_shadow);
    EXECUTE format('SELECT create_%s_read_model(%L, false)', p_projection, v_shadow);
END
$$;

-- Rebuilding, step 1b: the shadow tables are full; create their secondary indexes (with the
-- names the live ones have), before the swap.
CREATE FUNCTION index_rebuilt_read_model(p_projection text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_projection NOT IN ('members', 'groups') THEN
        RAISE EXCEPTION 'unknown projection %', p_projection USING ERRCODE = '22023';
    END IF;
    EXECUTE format('SELECT index_%s_read_model(%L)', p_projection, 'rebuild_' || p_projection);
END
$$;

-- Rebuilding, step 2, inside the transaction that also moves the projection's checkpoint: every
-- table of the shadow schema replaces its namesake in `public` (indexes and constraints move
-- with it and keep their names), and the old tables are dropped. Readers wait for the ACCESS
-- EXCLUSIVE locks only while this runs, and see either the old tables or the new ones.
CREATE FUNCTION swap_in_rebuilt_read_model(p_projection text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_shadow text := 'rebuild_' || p_projection;
    v_retired text := 'retired_' || p_projection;
    v_table text;
    v_count integer := 0;
BEGIN
    IF p_projection NOT IN ('members', 'groups') THEN
        RAISE EXCEPTION 'unknown projection %', p_projection USING ERRCODE = '22023';
    END IF;
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', v_retired);
    EXECUTE format('CREATE SCHEMA %I', v_retired);
    FOR v_table IN SELECT tablename FROM pg_tables WHERE schemaname = v_shadow ORDER BY tablename
    LOOP
        EXECUTE format('ALTER TABLE IF EXISTS public.%I SET SCHEMA %I', v_table, v_retired);
        EXECUTE format('ALTER TABLE %I.%I SET SCHEMA public', v_shadow, v_table);
        v_count := v_count + 1;
    END LOOP;
    IF v_count = 0 THEN
        RAISE EXCEPTION 'no rebuilt tables in schema %', v_shadow USING ERRCODE = '55000';
    END IF;
    EXECUTE format('DROP SCHEMA %I CASCADE', v_retired);
    EXECUTE format('DROP SCHEMA %I', v_shadow);
    RETURN v_count;
END
$$;
