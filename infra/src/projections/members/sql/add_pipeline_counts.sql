-- Adds a page's changes to the pipeline board's counters ('' = no level of care).
INSERT INTO pipeline_counts (clinic, stage, level_of_care, members)
SELECT *
  FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
    ON CONFLICT (clinic, stage, level_of_care) DO UPDATE
   SET members = pipeline_counts.members + EXCLUDED.members
