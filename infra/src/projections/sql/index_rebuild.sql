-- The rebuilt tables are full: create their secondary indexes (see migrations/*_read_models.sql).
SELECT index_rebuilt_read_model($1)
