DROP TABLE mailbox;
DROP TABLE sent;
