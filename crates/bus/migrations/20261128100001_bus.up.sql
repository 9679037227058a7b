-- The bus: durable publish/subscribe with consumer groups, in Postgres. Services (in any
-- language) use it only through the functions below; docs/bus.md describes the protocol.

-- A consumer group (normally one per service) and its retry policy.
CREATE TABLE groups (
    name            text PRIMARY KEY,
    max_attempts    integer NOT NULL DEFAULT 10 CHECK (max_attempts > 0),
    backoff_base_ms integer NOT NULL DEFAULT 1000 CHECK (backoff_base_ms >= 0),
    backoff_max_ms  integer NOT NULL DEFAULT 3600000 CHECK (backoff_max_ms >= 0)
);

CREATE TABLE subscriptions (
    group_name text NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
    topic      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_name, topic)
);
CREATE INDEX subscriptions_topic ON subscriptions (topic);

-- Published events. `fanout` is how many groups were subscribed at publish time; an event
-- nobody subscribed to (fanout 0) waits up to 7 days for the first group to subscribe.
CREATE TABLE messages (
    id           uuid PRIMARY KEY,
    topic        text NOT NULL,
    payload      jsonb NOT NULL,
    headers      jsonb NOT NULL DEFAULT '{}',
    dedupe_key   text,
    fanout       integer NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    deliver_at   timestamptz NOT NULL
);
CREATE INDEX messages_unsubscribed ON messages (topic, published_at) WHERE fanout = 0;

-- One row per (group, event) until the group has handled it; then the row is deleted, so
-- this hot table holds only pending, running and dead deliveries.
CREATE TABLE deliveries (
    group_name  text NOT NULL,
    message_id  uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    state       text NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'running', 'dead')),
    attempt     integer NOT NULL DEFAULT 0,
    run_at      timestamptz NOT NULL,
    lease_until timestamptz,
    claimed_by  text,
    last_error  text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_name, message_id)
);
CREATE INDEX deliveries_ready ON deliveries (group_name, run_at) WHERE state = 'ready';
CREATE INDEX deliveries_leased ON deliveries (group_name, lease_until) WHERE state = 'running';
CREATE INDEX deliveries_message ON deliveries (message_id);

CREATE TABLE dedupe (
    key        text PRIMARY KEY,
    message_id uuid NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Subscribes a group to a topic (creating the group with the given policy, or updating it).
-- A new subscription also receives the waiting events nobody had subscribed to.
CREATE FUNCTION subscribe(p_group text, p_topic text, p_max_attempts integer DEFAULT 10,
                          p_backoff_base_ms integer DEFAULT 1000, p_backoff_max_ms integer DEFAULT 3600000)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_new bigint;
BEGIN
    -- Waits for publishes to this topic in flight, and holds new ones until this commits, so
    -- an event published meanwhile is either fanned out to the group or adopted below.
    PERFORM pg_advisory_xact_lock(hashtext('bus.topic:' || p_topic));
    INSERT INTO bus.groups (name, max_attempts, backoff_base_ms, backoff_max_ms)
    VALUES (p_group, p_max_attempts, p_backoff_base_ms, p_backoff_max_ms)
    ON CONFLICT (name) DO UPDATE SET max_attempts = EXCLUDED.max_attempts,
        backoff_base_ms = EXCLUDED.backoff_base_ms, backoff_max_ms = EXCLUDED.backoff_max_ms;
    INSERT INTO bus.subscriptions (group_name, topic) VALUES (p_group, p_topic) ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_new = ROW_COUNT;
    IF v_new > 0 THEN
        WITH adopted AS (
            UPDATE bus.messages SET fanout = 1 WHERE topic = p_topic AND fanout = 0 RETURNING id, deliver_at
        )
        INSERT INTO bus.deliveries (group_name, message_id, run_at) SELECT p_group, id, deliver_at FROM adopted;
        PERFORM pg_notify('bus', p_group);
    END IF;
END $$;

-- Publishes an event in the caller's transaction: it exists if and only if the caller commits.
-- With a dedupe key, a second publish inside the window is a no-op and returns NULL.
CREATE FUNCTION publish(p_topic text, p_payload jsonb, p_headers jsonb DEFAULT '{}',
                        p_dedupe_key text DEFAULT NULL, p_deliver_at timestamptz DEFAULT NULL,
                        p_id uuid DEFAULT NULL, p_dedupe_window interval DEFAULT '1 hour')
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid := coalesce(p_id, gen_random_uuid());
    v_at timestamptz := coalesce(p_deliver_at, now());
    v_taken uuid;
    v_fanout integer;
BEGIN
    IF p_dedupe_key IS NOT NULL THEN
        INSERT INTO bus.dedupe AS d (key, message_id, expires_at) VALUES (p_dedupe_key, v_id, now() + p_dedupe_window)
        ON CONFLICT (key) DO UPDATE SET message_id = EXCLUDED.message_id, expires_at = EXCLUDED.expires_at
            WHERE d.expires_at <= now()
        RETURNING message_id INTO v_taken;
        IF v_taken IS NULL THEN
            RETURN NULL;
        END IF;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(hashtext('bus.topic:' || p_topic));
    SELECT count(*) INTO v_fanout FROM bus.subscriptions WHERE topic = p_topic;
    INSERT INTO bus.messages (id, topic, payload, headers, dedupe_key, fanout, deliver_at)
    VALUES (v_id, p_topic, p_payload, coalesce(p_headers, '{}'), p_dedupe_key, v_fanout, v_at);
    INSERT INTO bus.deliveries (group_name, message_id, run_at)
    SELECT group_name, v_id, v_at FROM bus.subscriptions WHERE topic = p_topic;
    -- One notification per transaction: Postgres folds identical notifications at commit.
    PERFORM pg_notify('bus', '');
    RETURN v_id;
END $$;

-- Claims up to p_max due deliveries for a group: ready ones whose time has come, and running
-- ones whose lease ran out (their worker died). Each claim bumps the attempt number, which
-- fences out the previous holder. A lease that ran out on the last attempt is dead-lettered.
CREATE FUNCTION claim(p_group text, p_worker text, p_max integer, p_lease interval)
RETURNS TABLE (message_id uuid, topic text, payload jsonb, headers jsonb, attempt integer, published_at timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE bus.deliveries d
    SET state = 'dead', lease_until = NULL, updated_at = now(),
        last_error = coalesce(d.last_error || '; ', '') || 'lease expired on the last attempt (worker stopped?)'
    FROM bus.groups g
    WHERE g.name = d.group_name AND d.group_name = p_group AND d.state = 'running'
      AND d.lease_until < now() AND d.attempt >= g.max_attempts;

    RETURN QUERY
    WITH picked AS (
        SELECT d.message_id FROM bus.deliveries d
        WHERE d.group_name = p_group
          AND ((d.state = 'ready' AND d.run_at <= now()) OR (d.state = 'running' AND d.lease_until < now()))
        ORDER BY d.run_at
        LIMIT p_max
        FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE bus.deliveries d
        SET state = 'running', attempt = d.attempt + 1, lease_until = now() + p_lease,
            claimed_by = p_worker, updated_at = now()
        FROM picked WHERE d.group_name = p_group AND d.message_id = picked.message_id
        RETURNING d.message_id, d.attempt
    )
    SELECT m.id, m.topic, m.payload, m.headers, c.attempt, m.published_at
    FROM claimed c JOIN bus.messages m ON m.id = c.message_id
    ORDER BY m.published_at;
END $$;

-- Extends a lease (heartbeat). False if the attempt was fenced out.
CREATE FUNCTION extend(p_group text, p_message uuid, p_attempt integer, p_lease interval)
RETURNS boolean LANGUAGE sql AS $$
    WITH extended AS (
        UPDATE bus.deliveries SET lease_until = now() + p_lease, updated_at = now()
        WHERE group_name = p_group AND message_id = p_message AND state = 'running' AND attempt = p_attempt
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM extended);
$$;

-- Marks a delivery handled. False (and nothing changes) if the attempt was fenced out.
-- Call it in the handler's own transaction to record the handling and the ack atomically.
CREATE FUNCTION complete(p_group text, p_message uuid, p_attempt integer)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_done bigint;
BEGIN
    DELETE FROM bus.deliveries
    WHERE group_name = p_group AND message_id = p_message AND state = 'running' AND attempt = p_attempt;
    GET DIAGNOSTICS v_done = ROW_COUNT;
    IF v_done > 0 THEN
        DELETE FROM bus.messages m WHERE m.id = p_message
          AND NOT EXISTS (SELECT 1 FROM bus.deliveries d WHERE d.message_id = p_message);
    END IF;
    RETURN v_done > 0;
END $$;

-- Records a failed attempt: retried after an exponential backoff with jitter, or dead-lettered
-- with its error when permanent or out of attempts. Returns the new state, or NULL if fenced out.
CREATE FUNCTION fail(p_group text, p_message uuid, p_attempt integer, p_error text, p_permanent boolean DEFAULT false)
RETURNS text LANGUAGE sql AS $$
    UPDATE bus.deliveries d
    SET state = CASE WHEN p_permanent OR d.attempt >= g.max_attempts THEN 'dead' ELSE 'ready' END,
        run_at = now() + make_interval(secs => least(g.backoff_max_ms, g.backoff_base_ms * power(2, d.attempt - 1))
                                                 * (0.5 + random() * 0.5) / 1000.0),
        lease_until = NULL, last_error = p_error, updated_at = now()
    FROM bus.groups g
    WHERE g.name = d.group_name AND d.group_name = p_group AND d.message_id = p_message
      AND d.state = 'running' AND d.attempt = p_attempt
    RETURNING d.state;
$$;

-- Gives a claimed delivery back unhandled (graceful shutdown): the attempt does not count.
CREATE FUNCTION release(p_group text, p_message uuid, p_attempt integer)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_done bigint;
BEGIN
    UPDATE bus.deliveries SET state = 'ready', attempt = attempt - 1, lease_until = NULL, run_at = now(), updated_at = now()
    WHERE group_name = p_group AND message_id = p_message AND state = 'running' AND attempt = p_attempt;
    GET DIAGNOSTICS v_done = ROW_COUNT;
    IF v_done > 0 THEN
        PERFORM pg_notify('bus', p_group);
    END IF;
    RETURN v_done > 0;
END $$;

-- When a group next has something to do: its earliest ready time or lease expiry.
CREATE FUNCTION next_due(p_group text) RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT min(CASE WHEN state = 'ready' THEN run_at ELSE lease_until END)
    FROM bus.deliveries WHERE group_name = p_group AND state IN ('ready', 'running');
$$;

-- Dead letters of a group, oldest first.
CREATE FUNCTION dead_letters(p_group text)
RETURNS TABLE (message_id uuid, topic text, attempt integer, last_error text, failed_at timestamptz, payload jsonb)
LANGUAGE sql STABLE AS $$
    SELECT d.message_id, m.topic, d.attempt, d.last_error, d.updated_at, m.payload
    FROM bus.deliveries d JOIN bus.messages m ON m.id = d.message_id
    WHERE d.group_name = p_group AND d.state = 'dead' ORDER BY d.updated_at;
$$;

-- Puts a dead letter back in the queue with fresh attempts.
CREATE FUNCTION retry_dead(p_group text, p_message uuid) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_done bigint;
BEGIN
    UPDATE bus.deliveries SET state = 'ready', attempt = 0, run_at = now(), updated_at = now()
    WHERE group_name = p_group AND message_id = p_message AND state = 'dead';
    GET DIAGNOSTICS v_done = ROW_COUNT;
    PERFORM pg_notify('bus', p_group);
    RETURN v_done > 0;
END $$;

-- Drops a dead letter for good.
CREATE FUNCTION discard_dead(p_group text, p_message uuid) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_done bigint;
BEGIN
    DELETE FROM bus.deliveries WHERE group_name = p_group AND message_id = p_message AND state = 'dead';
    GET DIAGNOSTICS v_done = ROW_COUNT;
    DELETE FROM bus.messages m WHERE m.id = p_message
      AND NOT EXISTS (SELECT 1 FROM bus.deliveries d WHERE d.message_id = p_message);
    RETURN v_done > 0;
END $$;

-- Housekeeping: handled events left behind by racing completions, events nobody subscribed to
-- within 7 days, expired dedupe keys. Returns how many rows went.
CREATE FUNCTION sweep() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_a bigint; v_b bigint; v_c bigint;
BEGIN
    DELETE FROM bus.messages m WHERE m.fanout > 0 AND m.published_at < now() - interval '1 minute'
      AND NOT EXISTS (SELECT 1 FROM bus.deliveries d WHERE d.message_id = m.id);
    GET DIAGNOSTICS v_a = ROW_COUNT;
    DELETE FROM bus.messages WHERE fanout = 0 AND published_at < now() - interval '7 days';
    GET DIAGNOSTICS v_b = ROW_COUNT;
    DELETE FROM bus.dedupe WHERE expires_at < now();
    GET DIAGNOSTICS v_c = ROW_COUNT;
    RETURN v_a + v_b + v_c;
END $$;
