//! Completions in batches: the handlers of one worker hand their deliveries to one task,
//! which completes everything queued in one round trip while the previous one is in flight.
//! Under load the batches grow by themselves; when idle a completion goes out at once.

use tokio::sync::{mpsc, oneshot};

use crate::backend::Backend;
use crate::message::Delivery;

/// The most completions in one statement.
const MAX_BATCH: usize = 500;

type Reply = oneshot::Sender<Result<bool, String>>;

/// Where a handler sends a delivery to complete; cloned into each handler's task.
#[derive(Debug, Clone)]
pub(super) struct Acker {
    tx: mpsc::UnboundedSender<(Delivery, Reply)>,
}

impl Acker {
    /// Starts the completing task on `backend`; it ends once every `Acker` is dropped and
    /// what they sent is completed.
    pub(super) fn start<B: Backend>(backend: B) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, tokio::spawn(run(backend, rx)))
    }

    /// Completes `delivery` with the next batch: whether its attempt was still current, or
    /// why the batch failed (the lease then runs out and the delivery runs again).
    pub(super) async fn complete(&self, delivery: Delivery) -> Result<bool, String> {
        let (reply, done) = oneshot::channel();
        self.tx.send((delivery, reply)).map_err(|_| "the completing task has stopped".to_string())?;
        done.await.map_err(|_| "the completing task has stopped".to_string())?
    }
}

async fn run<B: Backend>(backend: B, mut rx: mpsc::UnboundedReceiver<(Delivery, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (deliveries, replies): (Vec<Delivery>, Vec<Reply>) = batch.drain(..).unzip();
        match backend.complete_many(&deliveries).await {
            Ok(done) => {
                for (reply, done) in replies.into_iter().zip(done) {
                    let _ = reply.send(Ok(done));
                }
            }
            Err(error) => {
                let error = format!("{:#}", anyhow::Error::from(error));
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}
