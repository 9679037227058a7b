//! The kit's integration tests, against a real Postgres from the test command.

mod config;
mod health;
mod migrate;
mod server;
