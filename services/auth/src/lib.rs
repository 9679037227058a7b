//! The auth service: signup, activation, login, sessions, password reset, and the keys that
//! sign access tokens. Owns the `auth` schema.

mod config;
mod context;
mod deferred;
pub mod domain;
mod error;
mod hashing;
pub mod janitor;
pub mod jwt;
mod queue;
mod routes;
mod startup;
mod state;
mod store;

pub use config::Config;
pub use error::ApiError;
pub use routes::ApiDoc;
pub use startup::Application;

/// The service's name, which is also its configuration scope (`SLIPWAY_AUTH_…`).
pub const NAME: &str = "auth";

/// The Postgres schema auth owns; no other service reads it.
pub const SCHEMA: &str = "auth";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Auth's migrations, embedded in the binary.
pub fn migrations() -> kit::migrate::Migrations {
    kit::migrate::Migrations::new(NAME, SCHEMA, "services/auth/migrations", &MIGRATOR)
}
