//! The interface every bus backend implements; the conformance suite holds them to it.

use std::future::Future;
use std::time::Duration;

use uuid::Uuid;

use crate::message::{DeadLetter, Delivery, FailState, Group, Publish};

/// Why a bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The backend's database failed (unreachable, a timeout, a constraint).
    #[error("bus database error")]
    Database(#[from] sqlx::Error),
    /// The NATS server failed (unreachable, a timeout, a refused request).
    #[error("bus NATS error: {0}")]
    Nats(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Something the bus cannot work with as given: a topic or group name the backend cannot
    /// carry, or a record it cannot read.
    #[error("{0}")]
    Invalid(String),
    /// A message too large to publish: nothing was published.
    #[error(
        "a message on {topic} is {bytes} bytes of JSON (payload and headers); the bus takes at most \
         {limit}: store the data elsewhere (a table, object storage) and publish a reference to it"
    )]
    TooLarge {
        /// Its topic.
        topic: String,
        /// Its payload's and headers' size as JSON.
        bytes: usize,
        /// [`crate::MAX_MESSAGE_BYTES`].
        limit: usize,
    },
}

pub(crate) type Result<T> = std::result::Result<T, BusError>;

/// A durable publish/subscribe store with consumer groups and leased deliveries.
pub trait Backend: Clone + Send + Sync + 'static {
    /// What [`Backend::waiter`] returns.
    type Waiter: Waiter;

    /// Publishes on its own. Returns `None` if the dedupe key was already used in its window.
    fn publish(&self, message: &Publish) -> impl Future<Output = Result<Option<Uuid>>> + Send;

    /// Publishes a batch on its own, all or none; each message's id in order, `None` for one
    /// whose dedupe key was used already (in its window, or earlier in the batch). The
    /// default publishes one by one in order; a backend overrides it with one round trip.
    fn publish_many(&self, messages: &[Publish]) -> impl Future<Output = Result<Vec<Option<Uuid>>>> + Send {
        async move {
            let mut ids = Vec::with_capacity(messages.len());
            for m in messages {
                ids.push(self.publish(m).await?);
            }
            Ok(ids)
        }
    }

    /// Subscribes a group to topics (creating or updating the group's retry policy).
    fn subscribe(&self, group: &Group, topics: &[&str]) -> impl Future<Output = Result<()>> + Send;

    /// Claims up to `max` due deliveries for `group`, leased for `lease`.
    fn claim(
        &self,
        group: &str,
        worker: &str,
        max: usize,
        lease: Duration,
    ) -> impl Future<Output = Result<Vec<Delivery>>> + Send;

    /// Extends a lease; false if this attempt was fenced out.
    fn extend(&self, delivery: &Delivery, lease: Duration) -> impl Future<Output = Result<bool>> + Send;

    /// Marks handled; false if this attempt was fenced out (and nothing changed).
    fn complete(&self, delivery: &Delivery) -> impl Future<Output = Result<bool>> + Send;

    /// Completes a batch (of any groups); for each delivery, whether it was completed (false:
    /// its attempt was fenced out). The default completes one by one; a backend overrides it
    /// with one round trip per group.
    fn complete_many(&self, deliveries: &[Delivery]) -> impl Future<Output = Result<Vec<bool>>> + Send {
        async move {
            let mut done = Vec::with_capacity(deliveries.len());
            for d in deliveries {
                done.push(self.complete(d).await?);
            }
            Ok(done)
        }
    }

    /// Extends a batch of leases; for each delivery, whether its attempt still holds it.
    fn extend_many(
        &self,
        deliveries: &[Delivery],
        lease: Duration,
    ) -> impl Future<Output = Result<Vec<bool>>> + Send {
        async move {
            let mut held = Vec::with_capacity(deliveries.len());
            for d in deliveries {
                held.push(self.extend(d, lease).await?);
            }
            Ok(held)
        }
    }

    /// Records a failure: retried with backoff, or dead-lettered.
    fn fail(
        &self,
        delivery: &Delivery,
        error: &str,
        permanent: bool,
    ) -> impl Future<Output = Result<FailState>> + Send;

    /// Gives a delivery back unhandled without spending an attempt.
    fn release(&self, delivery: &Delivery) -> impl Future<Output = Result<bool>> + Send;

    /// Something that sleeps until the group may have work (a wake-up or its next due time).
    fn waiter(&self, group: &str) -> impl Future<Output = Result<Self::Waiter>> + Send;

    /// The group's dead letters, oldest first.
    fn dead_letters(&self, group: &str) -> impl Future<Output = Result<Vec<DeadLetter>>> + Send;
    /// Delivers a dead letter to the group again with fresh attempts; false if there is none.
    fn retry_dead(&self, group: &str, message: Uuid) -> impl Future<Output = Result<bool>> + Send;
    /// Deletes a dead letter; false if there is none.
    fn discard_dead(&self, group: &str, message: Uuid) -> impl Future<Output = Result<bool>> + Send;

    /// Housekeeping; returns how many records went.
    fn sweep(&self) -> impl Future<Output = Result<u64>> + Send;

    /// Whether a delivery a handler completed in its own transaction ([`crate::Handled::Acknowledged`])
    /// is finished with that commit (Postgres: the commit removed it), or still needs the worker
    /// to acknowledge it to the backend (JetStream: the commit only recorded it as handled).
    fn completes_in_transaction(&self) -> bool {
        true
    }
}

/// Waits, without busy polling, until a group may have something to claim.
pub trait Waiter: Send + 'static {
    /// Returns on a wake-up, when the group's next delivery falls due, or after `max`.
    fn wait(&mut self, max: Duration) -> impl Future<Output = ()> + Send;
}
