-- Services may connect as roles of their own, with no rights on the bus's tables: the
-- functions run with their owner's rights (SECURITY DEFINER) and a fixed search_path (their
-- tables are schema-qualified), and only roles granted EXECUTE may call them (`slipway
-- migrate up` grants a service's role the publishing and handling ones; bus::SERVICE_FUNCTIONS).
ALTER FUNCTION bus.subscribe(text, text, integer, integer, integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION bus.publish(text, jsonb, jsonb, text, timestamptz, uuid, interval) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION bus.claim(text, text, integer, interval) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION bus.extend(text, uuid, integer, interval) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION bus.complete(text, uuid, integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION bus.fail(text, uuid, integer, text, boolean) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION bus.release(text, uuid, integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION bus.next_due(text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION bus.dead_letters(text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION bus.retry_dead(text, uuid) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION bus.discard_dead(text, uuid) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION bus.sweep() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA bus FROM PUBLIC;
