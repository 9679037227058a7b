ALTER TABLE bus.messages DROP CONSTRAINT messages_size;
