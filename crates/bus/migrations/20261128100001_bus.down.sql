DROP FUNCTION sweep, discard_dead, retry_dead, dead_letters, next_due, release, fail, complete, extend, claim, publish, subscribe;
DROP TABLE dedupe, deliveries, messages, subscriptions, groups;
