-- Reverts definer: the functions run with the caller's rights again, and anyone may call them.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA bus TO PUBLIC;
ALTER FUNCTION bus.subscribe(text, text, integer, integer, integer) SECURITY INVOKER RESET search_path;
ALTER FUNCTION bus.publish(text, jsonb, jsonb, text, timestamptz, uuid, interval) SECURITY INVOKER RESET search_path;
ALTER FUNCTION bus.claim(text, text, integer, interval) SECURITY INVOKER RESET search_path;
ALTER FUNCTION bus.extend(text, uuid, integer, interval) SECURITY INVOKER RESET search_path;
ALTER FUNCTION bus.complete(text, uuid, integer) SECURITY INVOKER RESET search_path;
ALTER FUNCTION bus.fail(text, uuid, integer, text, boolean) SECURITY INVOKER RESET search_path;
ALTER FUNCTION bus.release(text, uuid, integer) SECURITY INVOKER RESET search_path;
ALTER FUNCTION bus.next_due(text) SECURITY INVOKER RESET search_path;
ALTER FUNCTION bus.dead_letters(text) SECURITY INVOKER RESET search_path;
ALTER FUNCTION bus.retry_dead(text, uuid) SECURITY INVOKER RESET search_path;
ALTER FUNCTION bus.discard_dead(text, uuid) SECURITY INVOKER RESET search_path;
ALTER FUNCTION bus.sweep() SECURITY INVOKER RESET search_path;
