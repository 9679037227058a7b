-- The auth flows: one-time tokens, sessions with rotating refresh tokens, the audit trail,
-- rate-limit counters and the development signing key. (Events go on the bus.)

-- Activation and password-reset tokens. Only an HMAC of the token is stored.
CREATE TABLE one_time_tokens (
    hash        bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     text NOT NULL CHECK (purpose IN ('activation', 'password_reset')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    consumed_at timestamptz
);
CREATE INDEX one_time_tokens_user ON one_time_tokens (user_id, purpose) WHERE consumed_at IS NULL;

-- A session is a refresh-token family: revoking it ends every token of the family.
CREATE TABLE sessions (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    revoked_reason text,
    ip             inet,
    user_agent     text
);
CREATE INDEX sessions_user_live ON sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE refresh_tokens (
    hash       bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Every auth event, kept after the user is gone (no foreign key).
CREATE TABLE audit_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    event      text NOT NULL,
    outcome    text NOT NULL,
    user_id    uuid,
    email      text,
    ip         inet,
    user_agent text,
    request_id text
);
CREATE INDEX audit_events_user ON audit_events (user_id, at);

-- Fixed-window counters shared by every instance.
CREATE TABLE rate_limits (
    key          text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    hits         integer NOT NULL
);

-- Dev and test only: the signing key generated on first start, shared by every instance.
CREATE TABLE dev_signing_key (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pkcs8_pem  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
