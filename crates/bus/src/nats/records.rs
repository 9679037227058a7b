//! The lease records' life as this process sees it: its copies of the records it wrote, the
//! swaps that keep them current, the acknowledgements it sends, and the delayed purge of done
//! records.

use std::sync::Weak;
use std::time::{Duration, Instant};

use async_nats::jetstream;

use super::fence::{self, Held, Lease};
use super::{Inner, JsBus, nats_error, poisoned};
use crate::backend::Result;

/// How long a done record outlives its acknowledgement. A server killed outright forgets the
/// acknowledgements it had not yet written (seen here: a restart redelivered dozens of
/// completed events), and the record turns such a redelivery away; purged at once, each of
/// them was handled twice.
pub(super) const KEEP_DONE: Duration = Duration::from_secs(60);

impl JsBus {
    /// Acknowledges a delivery (`Ack`, `Term`, or `Nak` to give it back) and waits for the
    /// server to confirm it: once settled, JetStream has acted on it.
    pub(super) async fn settle(&self, reply: &str, kind: jetstream::AckKind) -> Result<()> {
        let body: bytes::Bytes = kind.into();
        self.inner.client.request(reply.to_string(), body).await.map_err(nats_error)?;
        Ok(())
    }

    /// Sets when JetStream delivers it again (`None`: now). Not confirmed: were it lost, the
    /// consumer's own 30 s acknowledgement wait brings the delivery back.
    pub(super) async fn redeliver_in(&self, reply: &str, delay: Option<Duration>) -> Result<()> {
        let body: bytes::Bytes = jetstream::AckKind::Nak(delay).into();
        self.inner.client.publish(reply.to_string(), body).await.map_err(nats_error)
    }

    /// The current record of `attempt`: this process's copy when it has one (`cached`) and a
    /// swap follows to check it, else the bucket's.
    pub(super) async fn held(&self, key: &str, attempt: i32, cached: bool) -> Result<Option<Held>> {
        if cached
            && let Some(h) = self.inner.known.lock().map_err(|_| poisoned())?.get(key)
            && h.lease.attempt == attempt
            && !h.lease.done
        {
            return Ok(Some(h.clone()));
        }
        fence::current(&self.inner.leases, key, attempt).await
    }

    /// Swaps the record (see `fence::swap`) and keeps this process's copy current.
    pub(super) async fn write(&self, key: &str, revision: Option<u64>, lease: Lease) -> Result<bool> {
        let written = fence::swap(&self.inner.leases, key, revision, &lease).await?;
        let mut known = self.inner.known.lock().map_err(|_| poisoned())?;
        match written {
            Some(revision) if !lease.done => {
                known.insert(key.to_string(), Held { lease, revision });
            }
            _ => {
                known.remove(key);
            }
        }
        Ok(written.is_some())
    }

    /// Forgets a settled delivery's lease record, its history too (a KV delete would leave a
    /// marker per message for the bucket's whole retention).
    pub(super) async fn forget(&self, key: &str) -> Result<()> {
        forget(&self.inner, key).await
    }

    /// Queues a done record for the delayed purge.
    pub(super) fn settled(&self, key: String) -> Result<()> {
        self.inner.settled.lock().map_err(|_| poisoned())?.push_back((Instant::now(), key));
        Ok(())
    }
}

pub(super) async fn forget(inner: &Inner, key: &str) -> Result<()> {
    let subject = format!("{}{key}", inner.leases.prefix);
    inner.leases.stream.purge().filter(subject).await.map_err(nats_error)?;
    Ok(())
}

/// Purges a record that is still done. A dead letter retried within [`KEEP_DONE`] has a live
/// record under the same key again, which must stay: its attempts are fenced by it.
async fn forget_if_done(inner: &Inner, key: &str) -> Result<()> {
    match fence::read(&inner.leases, key).await? {
        Some(held) if held.lease.done => forget(inner, key).await,
        _ => Ok(()),
    }
}

/// Purges done records older than [`KEEP_DONE`], every few seconds, while the bus lives. One
/// that a crash leaves behind goes with the bucket's retention.
pub(super) async fn purge_settled(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let Some(inner) = inner.upgrade() else { return };
        let due: Vec<String> = {
            let Ok(mut settled) = inner.settled.lock() else { return };
            let mut due = Vec::new();
            while settled.front().is_some_and(|(at, _)| at.elapsed() >= KEEP_DONE) {
                due.extend(settled.pop_front().map(|(_, key)| key));
            }
            due
        };
        for keys in due.chunks(256) {
            let purged = futures_util::future::join_all(keys.iter().map(|k| forget_if_done(&inner, k))).await;
            if let Some(Err(error)) = purged.into_iter().find(Result::is_err) {
                tracing::warn!(%error, "purging done lease records failed; the bucket's retention will");
            }
        }
    }
}
