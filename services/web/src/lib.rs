//! The web frontend: server-rendered pages that work without JavaScript, a backend-for-frontend
//! that calls the auth API server-side and keeps the session in an HttpOnly cookie. Owns the
//! `web` schema (sessions).

mod auth_client;
mod config;
mod csrf;
mod pages;
mod security;
mod session;
mod startup;
mod state;

pub use config::Config;
pub use startup::Application;

pub const NAME: &str = "web";
pub const SCHEMA: &str = "web";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub fn migrations() -> kit::migrate::Migrations {
    kit::migrate::Migrations::new(NAME, SCHEMA, "services/web/migrations", &MIGRATOR)
}

/// What web keeps, and for how long (swept hourly): a session until it expires.
pub const RETENTION: &[(&str, &str)] =
    &[("expired sessions", "DELETE FROM sessions WHERE expires_at < now()")];
