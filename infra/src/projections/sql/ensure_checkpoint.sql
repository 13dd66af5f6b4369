-- A projection's checkpoint row, created at the start of the log if it is missing.
INSERT INTO projection_checkpoints (projection) VALUES ($1) ON CONFLICT (projection) DO NOTHING
