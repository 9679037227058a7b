-- Reverts claim: back to one query over both kinds of claimable delivery.
CREATE OR REPLACE FUNCTION bus.claim(p_group text, p_worker text, p_max integer, p_lease interval)
RETURNS TABLE (message_id uuid, topic text, payload jsonb, headers jsonb, attempt integer, published_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
