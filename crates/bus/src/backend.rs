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
}

pub(crate) type Result<T> = std::result::Result<T, BusError>;

/// A durable publish/subscribe store with consumer groups and leased deliveries.
pub trait Backend: Clone + Send + Sync + 'static {
    /// What [`Backend::waiter`] returns.
    type Waiter: Waiter;

    /// Publishes on its own. Returns `None` if the dedupe key was already used in its window.
    fn publish(&self, message: &Publish) -> impl Future<Output = Result<Option<Uuid>>> + Send;

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
}

/// Waits, without busy polling, until a group may have something to claim.
pub trait Waiter: Send + 'static {
    /// Returns on a wake-up, when the group's next delivery falls due, or after `max`.
    fn wait(&mut self, max: Duration) -> impl Future<Output = ()> + Send;
}
