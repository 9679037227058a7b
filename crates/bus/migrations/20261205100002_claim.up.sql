-- Claims through the indexes: expired leases (few) and due ready deliveries, each in its own
-- index order with its own limit, instead of one OR that made Postgres sort the whole backlog
-- on every claim (22 ms per claim of 512 at 50,000 waiting). The claimed rows are then
-- updated and read by key; the hot tables are in memory, which random_page_cost = 1.1 tells
-- the planner (at the default 4 it scans 50,000 rows rather than look up 512).
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
