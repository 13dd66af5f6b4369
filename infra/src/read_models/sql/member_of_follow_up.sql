SELECT member_id FROM member_follow_ups WHERE clinic = $1 AND follow_up_id = $2
