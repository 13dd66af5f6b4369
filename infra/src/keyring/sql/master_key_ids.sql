-- Which master keys wrap the live data keys (the partial index answers it).
SELECT DISTINCT master_key_id
FROM member_keys
WHERE wrapped_key IS NOT NULL
ORDER BY master_key_id
