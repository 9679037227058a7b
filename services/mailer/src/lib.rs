//! The mailer: subscribes to the events that need an email (auth's), renders them from
//! templates, and sends each exactly once over SMTP — or, in development, keeps them in a
//! mailbox shown at `/dev/mail`. Owns the `mailer` schema.

mod config;
mod handler;
mod mailbox;
mod smtp;
mod startup;
pub mod templates;

pub use config::{Config, SmtpConfig, SmtpTls, Transport};
pub use startup::Application;

/// The service's name, configuration scope and bus consumer group.
pub const NAME: &str = "mailer";

/// The Postgres schema the mailer owns.
pub const SCHEMA: &str = "mailer";

/// The topics the mailer handles: every event that becomes an email (the `events` crate's).
pub const TOPICS: &[&str] = &events::AccountEmail::TOPICS;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub fn migrations() -> kit::migrate::Migrations {
    kit::migrate::Migrations::new(NAME, SCHEMA, "services/mailer/migrations", &MIGRATOR)
}

/// What the mailer keeps, and for how long (swept hourly): the record of a sent email 30 days
/// (it guards against sending an event twice, and the bus keeps no delivered event that long),
/// an email in the dev mailbox 7 days.
pub const RETENTION: &[(&str, &str)] = &[
    ("sent-email records", "DELETE FROM sent WHERE sent_at < now() - interval '30 days'"),
    ("dev mailbox emails", "DELETE FROM mailbox WHERE received_at < now() - interval '7 days'"),
];
