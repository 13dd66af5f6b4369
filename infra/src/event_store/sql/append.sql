-- One round trip: see append_to_stream in migrations/*_event_store.sql.
SELECT outcome, stream_version, positions
  FROM append_to_stream($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
