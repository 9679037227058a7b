//! The mailer's integration tests: the real mailer against real Postgres, sending to a real
//! SMTP server (the testkit sink) or keeping mail in the dev mailbox.

mod delivery;
mod helpers;
mod jetstream;
mod mailbox;
mod scale;
