CREATE OR REPLACE FUNCTION bus.sweep() RETURNS bigint LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
DROP FUNCTION bus.mark_handled(text, uuid);
DROP TABLE bus.handled;
