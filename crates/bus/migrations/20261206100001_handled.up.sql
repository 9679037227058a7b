-- Deliveries from JetStream that a handler completed in its own transaction
-- (bus::AnyBus::complete_in): the row commits with the handler's writes, so a redelivery
-- (the acknowledgement to JetStream lost with a dying instance) finds it and changes nothing.
-- On Postgres the delivery row itself plays this part (bus.complete). Rows outlive the
-- stream's retention (7 days), after which JetStream cannot redeliver; bus.sweep prunes them.
CREATE TABLE bus.handled (
    group_name text NOT NULL,
    message_id uuid NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_name, message_id)
);

-- True the first time a group's message is marked handled; false when it already was (the
-- caller rolls back). A second transaction marking the same message waits for the first.
CREATE FUNCTION bus.mark_handled(p_group text, p_message uuid) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO bus.handled (group_name, message_id) VALUES (p_group, p_message)
    ON CONFLICT DO NOTHING;
    RETURN FOUND;
END $$;
REVOKE EXECUTE ON FUNCTION bus.mark_handled(text, uuid) FROM PUBLIC;

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
