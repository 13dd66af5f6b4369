-- Fresh, empty shadow tables for the projection (see migrations/*_read_models.sql).
SELECT prepare_read_model_rebuild($1)
