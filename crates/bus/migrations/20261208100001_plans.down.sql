-- Back to the SQL functions of 20261207100001_lean.
CREATE OR REPLACE FUNCTION bus.complete_many(p_group text, p_messages uuid[], p_attempts integer[])
RETURNS TABLE (message_id uuid, attempt integer)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET random_page_cost = 1.1 AS $$
    DELETE FROM bus.deliveries d USING unnest(p_messages, p_attempts) AS u (id, attempt)
    WHERE d.group_name = p_group AND d.message_id = u.id AND d.state || '' = 'running'
      AND d.attempt = u.attempt
    RETURNING d.message_id, d.attempt;
$$;
CREATE OR REPLACE FUNCTION bus.extend_many(p_group text, p_messages uuid[], p_attempts integer[], p_lease interval)
RETURNS TABLE (message_id uuid, attempt integer)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET random_page_cost = 1.1 AS $$
    UPDATE bus.deliveries d SET lease_until = now() + p_lease, updated_at = now()
    FROM unnest(p_messages, p_attempts) AS u (id, attempt)
    WHERE d.group_name = p_group AND d.message_id = u.id AND d.state || '' = 'running'
      AND d.attempt = u.attempt
    RETURNING d.message_id, d.attempt;
$$;
CREATE OR REPLACE FUNCTION bus.next_due(p_group text) RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT least(
        (SELECT d.run_at FROM bus.deliveries d WHERE d.group_name = p_group AND d.state = 'ready'
         ORDER BY d.run_at LIMIT 1),
        (SELECT d.lease_until FROM bus.deliveries d WHERE d.group_name = p_group AND d.state = 'running'
         ORDER BY d.lease_until LIMIT 1));
$$;
