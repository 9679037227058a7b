-- A message's payload and headers, as JSON the way Postgres prints them, take at most 1 MiB
-- (bus::MAX_MESSAGE_BYTES; NATS's default max_payload too): a publisher in any language is
-- refused at once, rather than a consumer choking later on batches of huge messages. NOT
-- VALID: rows already stored are not re-checked.
ALTER TABLE bus.messages ADD CONSTRAINT messages_size
    CHECK (octet_length(payload::text) + octet_length(headers::text) <= 1048576) NOT VALID;
