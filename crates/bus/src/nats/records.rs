//! The lease records' life as this process sees it: its copies of the records it wrote, the
//! swaps that keep them current, the acknowledgements it sends, and the delayed purge of done
//! records.

use std::sync::Weak;
use std::time::{Duration, Instant};

use async_nats::jetstream;

use super::fence::{self, Lease};
use super::{Inner, JsBus, nats_error, poisoned};
use crate::backend::Result;

/// A delivery this process claimed or wrote the record of last.
#[derive(Debug)]
pub(super) struct Mine {
    lease: Lease,
    /// The record's revision; `None` for a first attempt, which has none yet.
    revision: Option<u64>,
}

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

    /// Acknowledges a completed delivery without waiting for the server's confirmation: the
    /// done record is what counts, and turns away a redelivery should the acknowledgement be
    /// lost.
    pub(super) async fn acknowledge(&self, reply: &str) -> Result<()> {
        let body: bytes::Bytes = jetstream::AckKind::Ack.into();
        self.inner.client.publish(reply.to_string(), body).await.map_err(nats_error)
    }

    /// Sets when JetStream delivers it again (`None`: now). Not confirmed: were it lost, the
    /// consumer's own 30 s acknowledgement wait brings the delivery back.
    pub(super) async fn redeliver_in(&self, reply: &str, delay: Option<Duration>) -> Result<()> {
        let body: bytes::Bytes = jetstream::AckKind::Nak(delay).into();
        self.inner.client.publish(reply.to_string(), body).await.map_err(nats_error)
    }

    /// Notes a first attempt this process claimed, which writes no record (`revision` none).
    pub(super) fn claimed_first(&self, key: &str, reply: String) -> Result<()> {
        let lease = Lease { attempt: 1, reply, done: false };
        let mine = Mine { lease, revision: None };
        self.inner.known.lock().map_err(|_| poisoned())?.insert(key.to_string(), mine);
        Ok(())
    }

    /// The reply subject and record revision of `attempt` while it looks current: this
    /// process's own claim (revision `None`: a first attempt, no record yet; a swap follows
    /// that checks it), else the bucket's record. `None`: not current (fenced).
    pub(super) async fn attempt_of(&self, key: &str, attempt: i32) -> Result<Option<(String, Option<u64>)>> {
        if let Some(mine) = self.inner.known.lock().map_err(|_| poisoned())?.get(key)
            && mine.lease.attempt == attempt
        {
            return Ok(Some((mine.lease.reply.clone(), mine.revision)));
        }
        let held = fence::current(&self.inner.leases, key, attempt).await?;
        Ok(held.map(|h| (h.lease.reply, Some(h.revision))))
    }

    /// The reply subject of `attempt` if the bucket still has it current, read afresh (another
    /// instance's takeover shows only there): its record, or none for this process's first
    /// attempt.
    pub(super) async fn still_held(&self, key: &str, attempt: i32) -> Result<Option<String>> {
        Ok(match fence::read(&self.inner.leases, key).await? {
            Some(held) if held.lease.attempt == attempt && !held.lease.done => Some(held.lease.reply),
            Some(_) => None,
            None => {
                let known = self.inner.known.lock().map_err(|_| poisoned())?;
                known.get(key).filter(|m| m.lease.attempt == attempt).map(|m| m.lease.reply.clone())
            }
        })
    }

    /// Swaps the record (see `fence::swap`) and keeps this process's copy current; the new
    /// revision, or `None` if another instance changed the record first.
    pub(super) async fn write(&self, key: &str, revision: Option<u64>, lease: Lease) -> Result<Option<u64>> {
        let written = fence::swap(&self.inner.leases, key, revision, &lease).await?;
        let mut known = self.inner.known.lock().map_err(|_| poisoned())?;
        match written {
            Some(revision) if !lease.done => {
                known.insert(key.to_string(), Mine { lease, revision: Some(revision) });
            }
            _ => {
                known.remove(key);
            }
        }
        Ok(written)
    }

    /// Forgets a settled delivery's lease record, its history too (a KV delete would leave a
    /// marker per message for the bucket's whole retention).
    pub(super) async fn forget(&self, key: &str) -> Result<()> {
        forget(&self.inner, key).await
    }

    /// Queues a done record (its key and revision) for the delayed purge.
    pub(super) fn settled(&self, key: String, revision: u64) -> Result<()> {
        self.inner.settled.lock().map_err(|_| poisoned())?.push_back((Instant::now(), key, revision));
        Ok(())
    }
}

pub(super) async fn forget(inner: &Inner, key: &str) -> Result<()> {
    let subject = format!("{}{key}", inner.leases.prefix);
    inner.leases.stream.purge().filter(subject).await.map_err(nats_error)?;
    Ok(())
}

/// Purges a done record and what came before it under its key, in one request: a purge up to
/// its revision, so a newer record under the same key (a dead letter retried within
/// [`KEEP_DONE`], whose attempts it fences) stays.
async fn forget_done(inner: &Inner, key: &str, revision: u64) -> Result<()> {
    let subject = format!("{}{key}", inner.leases.prefix);
    inner.leases.stream.purge().filter(subject).sequence(revision + 1).await.map_err(nats_error)?;
    Ok(())
}

/// Purges done records older than [`KEEP_DONE`], every few seconds, while the bus lives. One
/// that a crash leaves behind goes with the bucket's retention.
pub(super) async fn purge_settled(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let Some(inner) = inner.upgrade() else { return };
        let due: Vec<(String, u64)> = {
            let Ok(mut settled) = inner.settled.lock() else { return };
            let mut due = Vec::new();
            while settled.front().is_some_and(|(at, _, _)| at.elapsed() >= KEEP_DONE) {
                due.extend(settled.pop_front().map(|(_, key, revision)| (key, revision)));
            }
            due
        };
        for keys in due.chunks(256) {
            let purged =
                futures_util::future::join_all(keys.iter().map(|(k, r)| forget_done(&inner, k, *r))).await;
            if let Some(Err(error)) = purged.into_iter().find(Result::is_err) {
                tracing::warn!(%error, "purging done lease records failed; the bucket's retention will");
            }
        }
    }
}
