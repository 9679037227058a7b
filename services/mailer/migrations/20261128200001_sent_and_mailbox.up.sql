-- What the mailer has sent: one row per bus event, the guard against sending an event twice.
CREATE TABLE sent (
    message_id uuid PRIMARY KEY,
    topic      text NOT NULL,
    recipient  text NOT NULL,
    transport  text NOT NULL CHECK (transport IN ('smtp', 'mailbox')),
    sent_at    timestamptz NOT NULL DEFAULT now()
);

-- The development mailbox: emails kept here instead of sent, shown at /dev/mail.
CREATE TABLE mailbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  uuid NOT NULL UNIQUE,
    recipient   text NOT NULL,
    subject     text NOT NULL,
    text_body   text NOT NULL,
    html_body   text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
