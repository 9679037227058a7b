-- Reverts batches: the batch functions go, the hot tables get the server's autovacuum defaults.
DROP FUNCTION bus.publish_many(text[], jsonb[], jsonb[], text[], timestamptz[], uuid[], interval);
DROP FUNCTION bus.complete_many(text, uuid[], integer[]);
DROP FUNCTION bus.extend_many(text, uuid[], integer[], interval);
ALTER TABLE bus.deliveries RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold,
    autovacuum_vacuum_insert_scale_factor, autovacuum_vacuum_insert_threshold,
    autovacuum_analyze_scale_factor, autovacuum_analyze_threshold, autovacuum_vacuum_cost_delay, fillfactor);
ALTER TABLE bus.messages RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold,
    autovacuum_vacuum_insert_scale_factor, autovacuum_vacuum_insert_threshold,
    autovacuum_analyze_scale_factor, autovacuum_analyze_threshold, autovacuum_vacuum_cost_delay);
