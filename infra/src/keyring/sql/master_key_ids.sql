-- Which master keys wrap the live data keys, and how many each.
SELECT master_key_id, count(*) AS keys
FROM member_keys
WHERE wrapped_key IS NOT NULL
GROUP BY master_key_id
ORDER BY master_key_id
