//! Durable messaging between services. An event published to a topic reaches every consumer
//! group subscribed to it (normally one group per service) exactly once per group, and inside
//! a group exactly one instance handles it; nothing is lost when an instance dies.
//!
//! [`Backend`] is the interface every backend implements and the conformance suite in `tests/`
//! checks; [`Worker`] runs a group's handler on any backend; [`pg`] is the Postgres backend,
//! whose SQL functions are the protocol services in other languages use (docs/bus.md);
//! [`nats`] is JetStream, and [`outbox`] puts Postgres in front of it as the transactional
//! outbox; [`AnyBus`] is whichever of the two a service's `SLIPWAY_BUS_URL` names.

#![warn(missing_docs, unreachable_pub)]

mod any;
mod backend;
mod choice;
mod message;
pub mod nats;
pub mod outbox;
pub mod pg;
mod worker;

pub use any::{AnyBus, AnyWaiter};
pub use backend::{Backend, BusError, Waiter};
pub use choice::BusUrl;
pub use message::{DeadLetter, Delivery, FailState, Group, MAX_MESSAGE_BYTES, Publish};
pub use worker::{Handled, Handler, HandlerError, Worker, WorkerConfig};

/// The Postgres schema of the bus.
pub const SCHEMA: &str = "bus";

/// The functions a service's own database role may call (`slipway migrate up` grants them):
/// publishing, subscribing and handling. Dead letters (`dead_letters`, `retry_dead`,
/// `discard_dead`) are the operator's, through `slipway bus` as the database's owner. Every
/// function runs with its owner's rights (SECURITY DEFINER), so a role needs no right on the
/// bus's tables, and has none.
pub const SERVICE_FUNCTIONS: &[&str] = &[
    "bus.subscribe",
    "bus.publish",
    "bus.publish_many",
    "bus.claim",
    "bus.extend",
    "bus.extend_many",
    "bus.complete",
    "bus.complete_many",
    "bus.fail",
    "bus.release",
    "bus.next_due",
    "bus.sweep",
    "bus.mark_handled",
];

/// What a service's role may read of the bus besides: its migrations table, so a service
/// that does not migrate can wait until the bus's schema is current.
pub const SERVICE_READABLE: &[&str] = &["bus.schema_migrations"];

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The bus schema's migrations; every service that uses the bus applies them at start.
pub fn migrations() -> kit::migrate::Migrations {
    kit::migrate::Migrations::new("bus", SCHEMA, "crates/bus/migrations", &MIGRATOR)
}
