-- Batches: one statement publishes, completes or extends many deliveries, so the bus's rate is
-- set by Postgres's row work, not by round trips. Same rules as the single-row functions.

-- Publishes a batch in the current transaction: element i of each array is message i (a NULL
-- or short array means the default for every message). Returns each message's id in order,
-- NULL for one whose dedupe key was used already (by an earlier publish in its window, or by
-- an earlier message of this batch).
CREATE FUNCTION bus.publish_many(p_topics text[], p_payloads jsonb[], p_headers jsonb[] DEFAULT NULL,
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

-- Completes a batch of one group's deliveries (element i of each array: a message and the
-- attempt that holds it). Returns the deliveries completed; a fenced-out attempt is left alone.
CREATE FUNCTION bus.complete_many(p_group text, p_messages uuid[], p_attempts integer[])
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

-- Extends the leases of a batch of one group's deliveries (a worker's heartbeat). Returns the
-- deliveries still held by the given attempts.
CREATE FUNCTION bus.extend_many(p_group text, p_messages uuid[], p_attempts integer[], p_lease interval)
RETURNS TABLE (message_id uuid, attempt integer)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET random_page_cost = 1.1 AS $$
    UPDATE bus.deliveries d SET lease_until = now() + p_lease, updated_at = now()
    FROM unnest(p_messages, p_attempts) AS u (id, attempt)
    WHERE d.group_name = p_group AND d.message_id = ANY (p_messages)  -- through the primary key
      AND d.message_id = u.id AND d.state = 'running' AND d.attempt = u.attempt
    RETURNING d.message_id, d.attempt;
$$;

REVOKE EXECUTE ON FUNCTION bus.publish_many(text[], jsonb[], jsonb[], text[], timestamptz[], uuid[], interval),
    bus.complete_many(text, uuid[], integer[]), bus.extend_many(text, uuid[], integer[], interval) FROM PUBLIC;

-- The hot tables churn: every delivery is inserted, updated at its claim and deleted at its
-- completion. Vacuum them after a fixed number of dead rows rather than a fraction of the
-- table (a queue's table is small, its churn large), without cost-based pauses, so claims do
-- not wade through dead rows between autovacuum's visits.
ALTER TABLE bus.deliveries SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 10000,
    autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 10000,
    autovacuum_vacuum_cost_delay = 0, fillfactor = 80);
ALTER TABLE bus.messages SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 10000,
    autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 10000,
    autovacuum_vacuum_cost_delay = 0);
