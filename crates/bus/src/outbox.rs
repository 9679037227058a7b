//! JetStream with Postgres as its transactional outbox: a service publishes into its own
//! database, in the transaction of the write the event is about (`pg::publish`), and a relay
//! moves each event to JetStream under its message id, which JetStream de-duplicates, so a
//! relay that dies between publishing and acknowledging loses nothing and duplicates nothing
//! within the de-duplication window. Consumers claim from JetStream.

use std::time::Duration;

use uuid::Uuid;

use crate::backend::{Backend, Result};
use crate::message::{DeadLetter, Delivery, FailState, Group, Publish};
use crate::nats::{JsBus, JsWaiter};
use crate::pg::PgBus;
use crate::worker::{Handled, Handler, HandlerError, Worker, WorkerConfig};

/// The Postgres bus group the relay claims from; it subscribes to every topic a JetStream
/// group subscribes to.
pub const RELAY_GROUP: &str = "nats-relay";

/// Publishes through Postgres, consumes from JetStream.
#[derive(Clone, Debug)]
pub struct Outboxed {
    pg: PgBus,
    js: JsBus,
}

impl Outboxed {
    /// The outbox on `pg`'s database, relayed to `js`.
    pub fn new(pg: PgBus, js: JsBus) -> Self {
        Self { pg, js }
    }

    /// The Postgres side, for publishing in a transaction (`pg::publish` on its pool).
    pub fn outbox(&self) -> &PgBus {
        &self.pg
    }

    /// The relay: a worker of [`RELAY_GROUP`] on the Postgres bus whose handler publishes to
    /// JetStream. Run one in every instance; they share the work as any group's workers do.
    /// Its lease (30 s) must stay well inside JetStream's de-duplication window (2 min).
    pub fn relay(&self) -> Worker<PgBus, Relay> {
        let config = WorkerConfig { concurrency: 256, ..WorkerConfig::new(relay_group(), &[]) };
        Worker::new(self.pg.clone(), self.relay_handler(), config)
    }

    /// Records `delivery` as handled by its group inside the handler's own transaction on the
    /// outbox's database, so the handler's writes and the record commit together; false when
    /// an earlier attempt already committed it (roll back then, and return
    /// [`Handled::Acknowledged`]: the worker acknowledges it to JetStream either way).
    pub async fn complete_in(&self, conn: &mut sqlx::PgConnection, delivery: &Delivery) -> Result<bool> {
        let first: bool = sqlx::query_scalar("SELECT bus.mark_handled($1, $2)")
            .bind(&delivery.group)
            .bind(delivery.id)
            .fetch_one(conn)
            .await?;
        Ok(first)
    }

    /// An error while JetStream's connection is down, for readiness.
    pub fn connected(&self) -> std::result::Result<(), String> {
        self.js.connected()
    }

    /// What the relay does with one event from the outbox.
    pub fn relay_handler(&self) -> Relay {
        Relay { js: self.js.clone() }
    }
}

/// The relay never gives up, and while NATS is down it tries again within seconds.
fn relay_group() -> Group {
    Group {
        max_attempts: i32::MAX,
        backoff_base: Duration::from_millis(200),
        backoff_max: Duration::from_secs(5),
        ..Group::new(RELAY_GROUP)
    }
}

/// Moves one event from the outbox to JetStream, under its own id.
#[derive(Debug)]
pub struct Relay {
    js: JsBus,
}

impl Handler for Relay {
    async fn handle(&self, d: &Delivery) -> std::result::Result<Handled, HandlerError> {
        // Its dedupe key was applied by the outbox; JetStream de-duplicates by the message id.
        let message = Publish {
            id: d.id,
            topic: d.topic.clone(),
            payload: d.payload.clone(),
            headers: d.headers.clone(),
            dedupe_key: None,
            deliver_at: None,
        };
        match self.js.publish(&message).await {
            Ok(_) => Ok(Handled::Done),
            Err(error) => Err(HandlerError::Retry(error.into())),
        }
    }
}

impl Backend for Outboxed {
    type Waiter = JsWaiter;

    async fn publish(&self, message: &Publish) -> Result<Option<Uuid>> {
        self.pg.publish(message).await
    }

    async fn publish_many(&self, messages: &[Publish]) -> Result<Vec<Option<Uuid>>> {
        self.pg.publish_many(messages).await
    }

    async fn subscribe(&self, group: &Group, topics: &[&str]) -> Result<()> {
        self.js.subscribe(group, topics).await?;
        self.pg.subscribe(&relay_group(), topics).await
    }

    async fn claim(&self, group: &str, worker: &str, max: usize, lease: Duration) -> Result<Vec<Delivery>> {
        self.js.claim(group, worker, max, lease).await
    }

    async fn extend(&self, delivery: &Delivery, lease: Duration) -> Result<bool> {
        self.js.extend(delivery, lease).await
    }

    async fn complete(&self, delivery: &Delivery) -> Result<bool> {
        self.js.complete(delivery).await
    }

    async fn complete_many(&self, deliveries: &[Delivery]) -> Result<Vec<bool>> {
        self.js.complete_many(deliveries).await
    }

    async fn extend_many(&self, deliveries: &[Delivery], lease: Duration) -> Result<Vec<bool>> {
        self.js.extend_many(deliveries, lease).await
    }

    async fn fail(&self, delivery: &Delivery, error: &str, permanent: bool) -> Result<FailState> {
        self.js.fail(delivery, error, permanent).await
    }

    async fn release(&self, delivery: &Delivery) -> Result<bool> {
        self.js.release(delivery).await
    }

    async fn waiter(&self, group: &str) -> Result<JsWaiter> {
        self.js.waiter(group).await
    }

    async fn dead_letters(&self, group: &str) -> Result<Vec<DeadLetter>> {
        self.js.dead_letters(group).await
    }

    async fn retry_dead(&self, group: &str, message: Uuid) -> Result<bool> {
        self.js.retry_dead(group, message).await
    }

    async fn discard_dead(&self, group: &str, message: Uuid) -> Result<bool> {
        self.js.discard_dead(group, message).await
    }

    async fn sweep(&self) -> Result<u64> {
        self.pg.sweep().await
    }

    fn completes_in_transaction(&self) -> bool {
        false
    }
}
