DROP TABLE dev_signing_key;
DROP TABLE rate_limits;
DROP TABLE audit_events;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE one_time_tokens;
