-- Counters a page brought to zero are removed, so the table holds the same rows however the
-- log was paged (an empty stage is simply absent; the board shows it as 0).
DELETE FROM pipeline_counts p
 USING unnest($1::text[], $2::text[], $3::text[]) AS k (clinic, stage, level_of_care)
 WHERE p.clinic = k.clinic AND p.stage = k.stage AND p.level_of_care = k.level_of_care
   AND p.members = 0
