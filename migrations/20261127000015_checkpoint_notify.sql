-- A projection's commit announces itself: every change of a checkpoint row sends NOTIFY
-- `clinic_checkpoints` with the projection's name, delivered when (and only if) the transaction
-- that moved it commits, together with the read-model writes the checkpoint covers. Whatever
-- moves a checkpoint is covered: a runner's page, a rebuild's swap, a migration that sets a
-- projection back to refold it, an operator by hand (a deleted row too; after a TRUNCATE the
-- runners insert their rows again, which notifies).
--
-- Servers keep a copy of small read models in memory (the pipeline board, read by every
-- dashboard) and drop it when this arrives (`infra/src/read_models/board_cache.rs`).
CREATE FUNCTION projection_checkpoint_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('clinic_checkpoints', coalesce(NEW.projection, OLD.projection));
    RETURN NULL;
END;
$$;

CREATE TRIGGER projection_checkpoints_notify
    AFTER INSERT OR UPDATE OR DELETE ON projection_checkpoints
    FOR EACH ROW EXECUTE FUNCTION projection_checkpoint_moved();
