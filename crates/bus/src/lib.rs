//! Durable messaging between services. An event published to a topic reaches every consumer
//! group subscribed to it (normally one group per service) exactly once per group, and inside
//! a group exactly one instance handles it; nothing is lost when an instance dies.
//!
//! [`Backend`] is the interface every backend implements (Postgres now, NATS JetStream later)
//! and the conformance suite in `tests/` checks; [`Worker`] runs a group's handler on any
//! backend; [`pg`] is the Postgres backend, whose SQL functions are the protocol services in
//! other languages use (docs/bus.md).

mod backend;
mod message;
pub mod pg;
mod worker;

pub use backend::{Backend, BusError, Waiter};
pub use message::{DeadLetter, Delivery, FailState, Group, Publish};
pub use worker::{Handled, Handler, HandlerError, Worker, WorkerConfig};

/// The Postgres schema of the bus.
pub const SCHEMA: &str = "bus";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The bus schema's migrations; every service that uses the bus applies them at start.
pub fn migrations() -> kit::migrate::Migrations {
    kit::migrate::Migrations::new("bus", SCHEMA, "crates/bus/migrations", &MIGRATOR)
}
