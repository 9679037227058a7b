//! Runs a consumer group's handler: claims in batches up to a concurrency limit, keeps each
//! lease alive while the handler works, reports the outcome, and on shutdown stops claiming,
//! lets in-flight work finish within a grace period and gives back what is left. Completions
//! go out in batches (`acker`), and so do lease extensions (`heartbeat`).

mod acker;
mod heartbeat;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::backend::{Backend, Waiter};
use crate::message::{Delivery, FailState, Group};
use acker::Acker;
use heartbeat::InFlight;

/// What a handler did with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Done: the worker completes the delivery.
    Done,
    /// The handler completed it in its own transaction ([`crate::AnyBus::complete_in`], or
    /// `pg::complete_in` on Postgres), or found it completed there by an earlier attempt.
    Acknowledged,
}

/// Why a handler did not handle a delivery.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth another attempt later (a timeout, a 4xx from a mail server).
    #[error("{0:#}")]
    Retry(anyhow::Error),
    /// Will never succeed (a malformed event, a mailbox that does not exist): dead-letter now.
    #[error("{0:#}")]
    Permanent(anyhow::Error),
}

/// A group's code: what to do with one delivery.
pub trait Handler: Send + Sync + 'static {
    /// Handles one delivery; may run again for the same message after a crash, so it must be
    /// idempotent or complete in its own transaction.
    fn handle(&self, delivery: &Delivery) -> impl Future<Output = Result<Handled, HandlerError>> + Send;
}

/// How a worker claims and handles.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The group it works for, with its retry policy.
    pub group: Group,
    /// The topics the group subscribes to.
    pub topics: Vec<String>,
    /// Deliveries this instance handles at once.
    pub concurrency: usize,
    /// How long a claim holds before another instance may take the delivery; extended while
    /// the handler runs.
    pub lease: Duration,
    /// The longest sleep without a wake-up (the polling fallback).
    pub poll: Duration,
    /// How long in-flight deliveries may take to finish after shutdown begins.
    pub drain: Duration,
}

impl WorkerConfig {
    /// Defaults: 8 at once, 30 s leases, a 5 s poll fallback, 20 s to drain.
    pub fn new(group: Group, topics: &[&str]) -> Self {
        Self {
            group,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            concurrency: 8,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(5),
            drain: Duration::from_secs(20),
        }
    }
}

/// Runs a group's [`Handler`] on a [`Backend`]: claims in batches, extends leases while
/// handling, reports each outcome, and drains at shutdown.
#[derive(Debug)]
pub struct Worker<B, H> {
    backend: B,
    handler: Arc<H>,
    config: WorkerConfig,
    id: String,
}

const SWEEP_EVERY: Duration = Duration::from_secs(60);

impl<B: Backend, H: Handler> Worker<B, H> {
    /// A worker with a fresh instance id.
    pub fn new(backend: B, handler: H, config: WorkerConfig) -> Self {
        let id = format!("{}-{}", config.group.name, uuid::Uuid::new_v4().simple());
        Self { backend, handler: Arc::new(handler), config, id }
    }

    /// Subscribes, then works until `shutdown` resolves; then drains.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), crate::BusError> {
        let topics: Vec<&str> = self.config.topics.iter().map(String::as_str).collect();
        self.backend.subscribe(&self.config.group, &topics).await?;
        let group = self.config.group.name.clone();
        let mut waiter = self.backend.waiter(&group).await?;
        let permits = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let refill = (self.config.concurrency / 4).max(1);
        let reporting = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut last_sweep = Instant::now();
        let (acker, acking) = Acker::start(self.backend.clone());
        let in_flight = InFlight::default();
        let beating = tokio::spawn(heartbeat::run(
            self.backend.clone(),
            group.clone(),
            in_flight.clone(),
            self.config.lease,
        ));
        tracing::info!(group, worker = %self.id, topics = ?topics, "bus worker started");
        tokio::pin!(shutdown);
        'claiming: loop {
            while tasks.try_join_next().is_some() {}
            // Claim when a quarter of the slots are free (or all that can be): under load,
            // claiming for each slot as it frees would cost a round trip per delivery.
            let free = permits.available_permits();
            if free < refill && !tasks.is_empty() {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tasks.join_next() => continue,
                }
            }
            let batch = match self.backend.claim(&group, &self.id, free, self.config.lease).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(
                        error = format!("{:#}", anyhow::Error::from(error)),
                        "claiming failed; retrying"
                    );
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(self.config.poll) => continue,
                    }
                }
            };
            let claimed = batch.len();
            for delivery in batch {
                let Ok(permit) = permits.clone().acquire_owned().await else { break };
                let held = in_flight.hold(&delivery);
                let job = process(
                    self.backend.clone(),
                    acker.clone(),
                    self.handler.clone(),
                    delivery,
                    stop_rx.clone(),
                    Slots { handling: permit, reporting: reporting.clone() },
                );
                tasks.spawn(async move {
                    let retrying = job.await;
                    drop(held);
                    retrying
                });
            }
            if last_sweep.elapsed() >= SWEEP_EVERY {
                last_sweep = Instant::now();
                if let Err(error) = self.backend.sweep().await {
                    tracing::warn!(error = %error, "bus sweep failed");
                }
            }
            if claimed < free {
                // Nothing more to claim: sleep until a wake-up or the next due time. A handler
                // finishing adds no work (claiming again then would only poll the database),
                // unless it scheduled a retry, whose due time the next wait must count.
                let wait = waiter.wait(self.config.poll);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        _ = &mut shutdown => break 'claiming,
                        () = &mut wait => break,
                        Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                            if joined.unwrap_or(false) {
                                break;
                            }
                        }
                    }
                }
            }
        }
        tracing::info!(group, in_flight = tasks.len(), drain = ?self.config.drain, "bus worker stopping: no new claims");
        let deadline = tokio::time::sleep(self.config.drain);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = tasks.join_next() => if next.is_none() { break },
                _ = &mut deadline, if !*stop_rx.borrow() => {
                    tracing::warn!(group, left = tasks.len(), "drain time over: releasing unfinished deliveries");
                    let _ = stop_tx.send(true);
                }
            }
        }
        drop(acker);
        let _ = acking.await;
        beating.abort();
        tracing::info!(group, "bus worker stopped");
        Ok(())
    }
}

/// A delivery's places: one of the `concurrency` handling slots while its handler runs, then
/// one of as many reporting slots while its outcome is reported. The next claim need not wait
/// for the reports (a batch of completions in flight), and reports cannot pile up unbounded.
struct Slots {
    handling: OwnedSemaphorePermit,
    reporting: Arc<Semaphore>,
}

/// Handles one delivery (its lease kept alive by the worker's heartbeat), and reports the
/// outcome; true if it will come back (a retry scheduled).
async fn process<B: Backend, H: Handler>(
    backend: B,
    acker: Acker,
    handler: Arc<H>,
    delivery: Delivery,
    mut stop: watch::Receiver<bool>,
    slots: Slots,
) -> bool {
    let span = tracing::info_span!(
        "message",
        group = %delivery.group,
        topic = %delivery.topic,
        message_id = %delivery.id,
        attempt = delivery.attempt,
        request_id = delivery.request_id().unwrap_or("-"),
    );
    async move {
        let outcome = tokio::select! {
            outcome = handler.handle(&delivery) => outcome,
            () = async { let _ = stop.wait_for(|stop| *stop).await; } => {
                // Boxed, as `fail` below: rare paths whose futures would otherwise set the
                // size of every delivery's task.
                if let Err(error) = Box::pin(backend.release(&delivery)).await {
                    tracing::warn!(%error, "releasing the delivery failed; its lease will expire");
                }
                return true;
            }
        };
        let reporting = slots.reporting.acquire_owned().await;
        drop(slots.handling);
        let reported = match outcome {
            Ok(Handled::Acknowledged) if backend.completes_in_transaction() => Ok(false),
            Ok(Handled::Acknowledged | Handled::Done) => acker.complete(delivery).await.map(|done| {
                if !done {
                    tracing::warn!("completed after a newer attempt took over; ignored");
                }
                false
            }),
            Err(error) => {
                let permanent = matches!(error, HandlerError::Permanent(_));
                let text = error.to_string();
                Box::pin(backend.fail(&delivery, &text, permanent)).await.map(|state| match state {
                    FailState::Retrying => {
                        tracing::warn!(error = %text, "handler failed; will retry");
                        true
                    }
                    FailState::Dead => {
                        tracing::error!(error = %text, "handler failed; dead-lettered");
                        false
                    }
                    FailState::Fenced => {
                        tracing::warn!(error = %text, "handler failed after a newer attempt took over");
                        false
                    }
                }).map_err(|e| format!("{:#}", anyhow::Error::from(e)))
            }
        };
        drop(reporting);
        reported.unwrap_or_else(|error| {
            tracing::warn!(%error, "reporting the outcome failed; the lease will expire and it will run again");
            true
        })
    }
    .instrument(span)
    .await
}
