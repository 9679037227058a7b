-- Reverts the lean deliveries: each message in its own row again, with the foreign key.
DROP VIEW bus.events;
INSERT INTO bus.messages (id, topic, payload, headers, fanout, published_at, deliver_at)
SELECT DISTINCT ON (d.message_id) d.message_id, d.topic, d.payload, d.headers,
       count(*) OVER (PARTITION BY d.message_id), d.published_at, d.run_at
FROM bus.deliveries d ORDER BY d.message_id
ON CONFLICT (id) DO NOTHING;
ALTER TABLE bus.deliveries DROP CONSTRAINT deliveries_size, DROP COLUMN topic, DROP COLUMN payload,
    DROP COLUMN headers, DROP COLUMN published_at;
CREATE INDEX deliveries_message ON bus.deliveries (message_id);
ALTER TABLE bus.deliveries ADD CONSTRAINT deliveries_message_id_fkey
    FOREIGN KEY (message_id) REFERENCES bus.messages (id) ON DELETE CASCADE;

CREATE OR REPLACE FUNCTION bus.subscribe(p_group text, p_topic text, p_max_attempts integer DEFAULT 10,
                          p_backoff_base_ms integer DEFAULT 1000, p_backoff_max_ms integer DEFAULT 3600000)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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

CREATE OR REPLACE FUNCTION bus.publish(p_topic text, p_payload jsonb, p_headers jsonb DEFAULT '{}',
                        p_dedupe_key text DEFAULT NULL, p_deliver_at timestamptz DEFAULT NULL,
                        p_id uuid DEFAULT NULL, p_dedupe_window interval DEFAULT '1 hour')
RETURNS uuid LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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

CREATE OR REPLACE FUNCTION bus.complete(p_group text, p_message uuid, p_attempt integer)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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

CREATE OR REPLACE FUNCTION bus.dead_letters(p_group text)
RETURNS TABLE (message_id uuid, topic text, attempt integer, last_error text, failed_at timestamptz, payload jsonb)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT d.message_id, m.topic, d.attempt, d.last_error, d.updated_at, m.payload
    FROM bus.deliveries d JOIN bus.messages m ON m.id = d.message_id
    WHERE d.group_name = p_group AND d.state = 'dead' ORDER BY d.updated_at;
$$;

CREATE OR REPLACE FUNCTION bus.discard_dead(p_group text, p_message uuid) RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_done bigint;
BEGIN
    DELETE FROM bus.deliveries WHERE group_name = p_group AND message_id = p_message AND state = 'dead';
    GET DIAGNOSTICS v_done = ROW_COUNT;
    DELETE FROM bus.messages m WHERE m.id = p_message
      AND NOT EXISTS (SELECT 1 FROM bus.deliveries d WHERE d.message_id = p_message);
    RETURN v_done > 0;
END $$;

CREATE OR REPLACE FUNCTION bus.publish_many(p_topics text[], p_payloads jsonb[], p_headers jsonb[] DEFAULT NULL,
                                 p_dedupe_keys text[] DEFAULT NULL, p_deliver_at timestamptz[] DEFAULT NULL,
                                 p_ids uuid[] DEFAULT NULL, p_dedupe_window interval DEFAULT '1 hour')
RETURNS uuid[] LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_ids uuid[];
BEGIN
    IF coalesce(array_length(p_topics, 1), 0) <> coalesce(array_length(p_payloads, 1), 0) THEN
        RAISE EXCEPTION 'bus.publish_many: % topics but % payloads',
            coalesce(array_length(p_topics, 1), 0), coalesce(array_length(p_payloads, 1), 0);
    END IF;
    -- A batch and a group's first subscription to one of its topics are serialised, as for a
    -- single publish; the locks are taken in one order, so two batches cannot deadlock.
    PERFORM pg_advisory_xact_lock_shared(hashtext('bus.topic:' || t))
    FROM (SELECT DISTINCT t FROM unnest(p_topics) AS t ORDER BY t) AS topics;

    -- A batch shares its transaction's now(): a microsecond apiece keeps it in order, for
    -- claims (by due time) and within them (by publish time).
    WITH input AS (
        SELECT u.i, u.topic, u.payload, coalesce(u.headers, '{}') AS headers, u.dedupe_key,
               now() + (u.i - 1) * interval '1 microsecond' AS published_at,
               coalesce(u.deliver_at, now() + (u.i - 1) * interval '1 microsecond') AS deliver_at,
               coalesce(u.id, gen_random_uuid()) AS id
        FROM unnest(p_topics, p_payloads, p_headers, p_dedupe_keys, p_deliver_at, p_ids)
             WITH ORDINALITY AS u (topic, payload, headers, dedupe_key, deliver_at, id, i)
        WHERE u.topic IS NOT NULL
    ), firsts AS (
        SELECT DISTINCT ON (dedupe_key) i, dedupe_key, id FROM input
        WHERE dedupe_key IS NOT NULL ORDER BY dedupe_key, i
    ), taken AS (
        INSERT INTO bus.dedupe AS d (key, message_id, expires_at)
        SELECT dedupe_key, id, now() + p_dedupe_window FROM firsts
        ON CONFLICT (key) DO UPDATE SET message_id = EXCLUDED.message_id, expires_at = EXCLUDED.expires_at
            WHERE d.expires_at <= now()
        RETURNING key
    ), kept AS (
        SELECT input.* FROM input
        WHERE input.dedupe_key IS NULL
           OR input.i IN (SELECT f.i FROM firsts f JOIN taken t ON t.key = f.dedupe_key)
    ), fanout AS (
        SELECT s.topic, count(*)::integer AS n FROM bus.subscriptions s
        WHERE s.topic IN (SELECT DISTINCT topic FROM kept) GROUP BY s.topic
    ), stored AS (  -- a data-modifying WITH runs to completion, read or not
        INSERT INTO bus.messages (id, topic, payload, headers, dedupe_key, fanout, published_at, deliver_at)
        SELECT k.id, k.topic, k.payload, k.headers, k.dedupe_key, coalesce(f.n, 0), k.published_at, k.deliver_at
        FROM kept k LEFT JOIN fanout f ON f.topic = k.topic
        RETURNING id
    ), delivered AS (
        INSERT INTO bus.deliveries (group_name, message_id, run_at)
        SELECT s.group_name, k.id, k.deliver_at FROM kept k JOIN bus.subscriptions s ON s.topic = k.topic
        RETURNING 1
    )
    SELECT array_agg(k.id ORDER BY i.i) INTO v_ids
    FROM input i LEFT JOIN kept k ON k.i = i.i;
    PERFORM pg_notify('bus', '');
    RETURN coalesce(v_ids, '{}');
END $$;

CREATE OR REPLACE FUNCTION bus.complete_many(p_group text, p_messages uuid[], p_attempts integer[])
RETURNS TABLE (message_id uuid, attempt integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET random_page_cost = 1.1 AS $$
DECLARE
    v_done uuid[];
    v_attempts integer[];
BEGIN
    WITH done AS (
        DELETE FROM bus.deliveries d USING unnest(p_messages, p_attempts) AS u (id, attempt)
        WHERE d.group_name = p_group AND d.message_id = ANY (p_messages)  -- through the primary key
          AND d.message_id = u.id AND d.state = 'running' AND d.attempt = u.attempt
        RETURNING d.message_id, d.attempt
    )
    SELECT coalesce(array_agg(done.message_id), '{}'), coalesce(array_agg(done.attempt), '{}')
    INTO v_done, v_attempts FROM done;
    DELETE FROM bus.messages m WHERE m.id = ANY (v_done)
      AND NOT EXISTS (SELECT 1 FROM bus.deliveries d WHERE d.message_id = m.id);
    RETURN QUERY SELECT * FROM unnest(v_done, v_attempts);
END $$;

CREATE OR REPLACE FUNCTION bus.extend_many(p_group text, p_messages uuid[], p_attempts integer[], p_lease interval)
RETURNS TABLE (message_id uuid, attempt integer)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET random_page_cost = 1.1 AS $$
    UPDATE bus.deliveries d SET lease_until = now() + p_lease, updated_at = now()
    FROM unnest(p_messages, p_attempts) AS u (id, attempt)
    WHERE d.group_name = p_group AND d.message_id = ANY (p_messages)  -- through the primary key
      AND d.message_id = u.id AND d.state = 'running' AND d.attempt = u.attempt
    RETURNING d.message_id, d.attempt;
$$;

CREATE OR REPLACE FUNCTION bus.claim(p_group text, p_worker text, p_max integer, p_lease interval)
RETURNS TABLE (message_id uuid, topic text, payload jsonb, headers jsonb, attempt integer, published_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET random_page_cost = 1.1 AS $$
DECLARE
    v_ids uuid[];
BEGIN
    UPDATE bus.deliveries d
    SET state = 'dead', lease_until = NULL, updated_at = now(),
        last_error = coalesce(d.last_error || '; ', '') || 'lease expired on the last attempt (worker stopped?)'
    FROM bus.groups g
    WHERE g.name = d.group_name AND d.group_name = p_group AND d.state = 'running'
      AND d.lease_until < now() AND d.attempt >= g.max_attempts;

    -- Pick (and lock) through the indexes.
    WITH expired AS (
        SELECT d.message_id, d.run_at FROM bus.deliveries d
        WHERE d.group_name = p_group AND d.state = 'running' AND d.lease_until < now()
        ORDER BY d.lease_until
        LIMIT p_max
        FOR UPDATE SKIP LOCKED
    ), due AS (
        SELECT d.message_id, d.run_at FROM bus.deliveries d
        WHERE d.group_name = p_group AND d.state = 'ready' AND d.run_at <= now()
        ORDER BY d.run_at
        LIMIT p_max
        FOR UPDATE SKIP LOCKED
    )
    SELECT array_agg(picked.message_id) INTO v_ids
    FROM (SELECT * FROM expired UNION ALL SELECT * FROM due ORDER BY run_at LIMIT p_max) AS picked;
    IF v_ids IS NULL THEN
        RETURN;
    END IF;

    -- Claim them by key (an array, so the plan is index lookups however large the backlog).
    RETURN QUERY
    WITH claimed AS (
        UPDATE bus.deliveries d
        SET state = 'running', attempt = d.attempt + 1, lease_until = now() + p_lease,
            claimed_by = p_worker, updated_at = now()
        WHERE d.group_name = p_group AND d.message_id = ANY (v_ids)
        RETURNING d.message_id, d.attempt
    )
    SELECT m.id, m.topic, m.payload, m.headers, c.attempt, m.published_at
    FROM bus.messages m JOIN claimed c ON c.message_id = m.id
    WHERE m.id = ANY (v_ids)
    ORDER BY m.published_at;
END $$;

CREATE OR REPLACE FUNCTION bus.sweep() RETURNS bigint LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_a bigint; v_b bigint; v_c bigint; v_d bigint;
BEGIN
    DELETE FROM bus.messages m WHERE m.fanout > 0 AND m.published_at < now() - interval '1 minute'
      AND NOT EXISTS (SELECT 1 FROM bus.deliveries d WHERE d.message_id = m.id);
    GET DIAGNOSTICS v_a = ROW_COUNT;
    DELETE FROM bus.messages WHERE fanout = 0 AND published_at < now() - interval '7 days';
    GET DIAGNOSTICS v_b = ROW_COUNT;
    DELETE FROM bus.dedupe WHERE expires_at < now();
    GET DIAGNOSTICS v_c = ROW_COUNT;
    DELETE FROM bus.handled WHERE handled_at < now() - interval '8 days';
    GET DIAGNOSTICS v_d = ROW_COUNT;
    RETURN v_a + v_b + v_c + v_d;
END $$;

CREATE OR REPLACE FUNCTION bus.next_due(p_group text) RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT min(CASE WHEN state = 'ready' THEN run_at ELSE lease_until END)
    FROM bus.deliveries WHERE group_name = p_group AND state IN ('ready', 'running');
$$;
