-- The outcomes report: per day offset, follow-ups recorded per outcome (NULL outcome: the
-- offset's follow-ups not recorded yet, so every planned offset has a row). $1 clinic.
SELECT f.day_offset, f.outcome, count(*) AS follow_ups
  FROM member_follow_ups f
 WHERE f.clinic = $1
 GROUP BY f.day_offset, f.outcome
 ORDER BY f.day_offset
