-- A dashboard list is logged as one access-log row naming every member it showed, instead of a
-- row per member; and the log keeps two btree indexes instead of three.
--
-- Why: a member page showed 50 members and wrote 50 rows, each with three index insertions:
-- measured, the log write cost PostgreSQL as much as the page's own query. DOMAIN.md asks for
-- "which member(s) (a list for dashboard queries)". Auditors still see one entry per member:
-- `accessLog` expands a list row into its members (infra/src/access_log/list.sql).

-- (clinic, id) is the order the clinic-wide listing reads in; nothing looks an entry up by id
-- alone. It replaces both the key on `id` and the identical index `access_log_clinic_idx`.
ALTER TABLE access_log DROP CONSTRAINT access_log_pkey;
ALTER TABLE access_log ADD CONSTRAINT access_log_pkey PRIMARY KEY (clinic, id);
DROP INDEX access_log_clinic_idx;

-- A row names one member (`member_id`: a record read, an export, a refusal) or the list a query
-- returned (`member_ids`, in the order shown), never both.
ALTER TABLE access_log ALTER COLUMN member_id DROP NOT NULL;
ALTER TABLE access_log ADD COLUMN member_ids uuid[];
ALTER TABLE access_log ADD CONSTRAINT access_log_one_member_or_a_list
    CHECK ((member_id IS NULL) <> (member_ids IS NULL));

DROP INDEX access_log_clinic_member_idx;
CREATE INDEX access_log_clinic_member_idx ON access_log (clinic, member_id, id)
    WHERE member_id IS NOT NULL;
-- GIN keeps new entries in a pending list and merges them in bulk: a list row costs one insert.
CREATE INDEX access_log_member_lists_idx ON access_log USING gin (member_ids)
    WHERE member_ids IS NOT NULL;
