-- The newest migration applied to this database (NULL before the first).
SELECT max(version) FROM _sqlx_migrations WHERE success
