-- The pipeline board's counters of one clinic ('' = no level of care).
SELECT stage, level_of_care, members
  FROM pipeline_counts
 WHERE clinic = $1 AND members > 0
