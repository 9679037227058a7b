//! What every Slipway service shares: configuration, telemetry, health, errors, graceful
//! shutdown, the Postgres pool and migrations — and only that.

#![warn(missing_docs, unreachable_pub)]

pub mod client_ip;
pub mod config;
pub mod db;
pub mod extract;
pub mod health;
pub mod migrate;
pub mod problem;
pub mod request_id;
pub mod server;
pub mod service;
pub mod telemetry;

pub use secrecy::{ExposeSecret, SecretString};
