-- Browser sessions. The cookie holds a random id; only its SHA-256 is stored, with the
-- tokens auth issued for the session (they never reach the browser).
CREATE TABLE sessions (
    id_hash           bytea PRIMARY KEY,
    access_token      text NOT NULL,
    access_expires_at timestamptz NOT NULL,
    refresh_token     text NOT NULL,
    expires_at        timestamptz NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
