-- Drops follow-ups a readmission cancelled ($1, $2: clinics and follow-up ids).
DELETE FROM member_follow_ups f
 USING unnest($1::text[], $2::uuid[]) AS k (clinic, follow_up_id)
 WHERE f.clinic = k.clinic AND f.follow_up_id = k.follow_up_id
