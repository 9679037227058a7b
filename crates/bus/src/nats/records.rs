//! The lease records as this process uses them: the deliveries it holds (where each one's
//! state lives, and the reply subject that settles it), the read-decide-swap of a record, and
//! the acknowledgements it sends.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream;
use uuid::Uuid;

use super::fence::{self, Block, Spot};
use super::{JsBus, nats_error, poisoned, random_below};
use crate::backend::{BusError, Result};
use crate::message::Delivery;

/// A delivery this process claimed.
#[derive(Debug, Clone)]
pub(super) struct Mine {
    pub(super) group: String,
    pub(super) attempt: i32,
    /// The reply subject of its JetStream delivery.
    pub(super) reply: String,
    pub(super) spot: Spot,
}

impl Mine {
    /// Whether this is the claim of `d`'s attempt.
    fn holds(&self, d: &Delivery) -> bool {
        self.attempt == d.attempt && self.group == d.group
    }
}

/// How often a swap is tried before a record that keeps changing is reported as an error
/// (the delivery's lease then runs out and it runs again).
const TRIES: usize = 32;

/// Tries after which the contention is worth a warning (ten instances on one group, measured
/// here, needed at most 5).
const CONTENDED: usize = 8;

impl JsBus {
    /// Acknowledges a delivery (`Ack`, `Term`, or `Nak` to give it back) and waits for the
    /// server to confirm it: once settled, JetStream has acted on it.
    pub(super) async fn settle(&self, reply: &str, kind: jetstream::AckKind) -> Result<()> {
        let body: bytes::Bytes = kind.into();
        self.inner.client.request(reply.to_string(), body).await.map_err(nats_error)?;
        Ok(())
    }

    /// Acknowledges a completed delivery without waiting for the server's confirmation: the
    /// done bit is what counts, and turns away a redelivery should the acknowledgement be lost.
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

    /// Notes deliveries this process claimed (each in place of an earlier attempt's), by
    /// message id, under one lock.
    pub(super) fn remember(&self, claimed: impl IntoIterator<Item = (Uuid, Mine)>) -> Result<()> {
        let mut known = self.inner.known.lock().map_err(|_| poisoned())?;
        for (id, mine) in claimed {
            let claims = known.entry(id).or_default();
            claims.retain(|m| m.group != mine.group);
            claims.push(mine);
        }
        Ok(())
    }

    /// This process's claim of `d`'s attempt, if it made it and has not forgotten it; `None`
    /// for any other attempt (a newer one of its own, or one claimed elsewhere), which cannot
    /// be current here.
    pub(super) fn mine(&self, d: &Delivery) -> Result<Option<Mine>> {
        let known = self.inner.known.lock().map_err(|_| poisoned())?;
        Ok(known.get(&d.id).and_then(|claims| claims.iter().find(|m| m.holds(d))).cloned())
    }

    /// Forgets `d`'s attempt, settled or fenced (a newer one of this process stays).
    pub(super) fn forget(&self, d: &Delivery) -> Result<()> {
        self.take_mine(std::slice::from_ref(d)).map(drop)
    }

    /// Takes this process's claims of the deliveries' attempts out of its notes (see
    /// [`JsBus::mine`]), to settle them for good, under one lock.
    pub(super) fn take_mine(&self, deliveries: &[Delivery]) -> Result<Vec<Option<Mine>>> {
        let mut known = self.inner.known.lock().map_err(|_| poisoned())?;
        let mut taken = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            let Some(claims) = known.get_mut(&d.id) else {
                taken.push(None);
                continue;
            };
            taken.push(claims.iter().position(|m| m.holds(d)).map(|i| claims.swap_remove(i)));
            if claims.is_empty() {
                known.remove(&d.id);
            }
        }
        Ok(taken)
    }

    /// Applies `decide` to the place of each claim in its block's record (its offset and
    /// attempt), one `amend` per block, the blocks concurrently: what `decide` said for each, or
    /// `false` without a look for a claim this process does not hold (`None`).
    pub(super) async fn decide_each(
        &self,
        claims: &[Option<Mine>],
        decide: impl Fn(&mut Block, u16, i32) -> bool,
    ) -> Result<Vec<bool>> {
        let mut blocks: HashMap<&str, Vec<(usize, u16, i32)>> = HashMap::new();
        for (i, mine) in claims.iter().enumerate() {
            if let Some(mine) = mine {
                blocks.entry(&mine.spot.key).or_default().push((i, mine.spot.offset, mine.attempt));
            }
        }
        let decide = &decide;
        let decided = futures_util::future::join_all(blocks.into_iter().map(|(key, places)| async move {
            let said = self
                .amend(key, |block| places.iter().map(|&(_, o, a)| decide(block, o, a)).collect::<Vec<_>>());
            said.await.map(|said| (places, said))
        }));
        let mut said = vec![false; claims.len()];
        for result in decided.await {
            let (places, decided) = result?;
            for (&(i, _, _), decided) in places.iter().zip(decided) {
                said[i] = decided;
            }
        }
        Ok(said)
    }

    /// Reads the record at `key`, lets `decide` look at it and change it, and writes it back if
    /// `decide` changed it, by compare-and-swap: if another instance wrote first, it reads and
    /// decides again. What `decide` returned on the record it was written over (or left as is).
    pub(super) async fn amend<T>(&self, key: &str, mut decide: impl FnMut(&mut Block) -> T) -> Result<T> {
        for tried in 0..TRIES {
            if tried > 0 {
                // Instances whose batches share a block: a random pause, of up to 2 ms after
                // the first loss and doubling to 64 ms, spreads their next tries; the tries
                // span about a second in all.
                let most = 1_u64 << tried.min(6);
                tokio::time::sleep(Duration::from_micros(random_below(most * 1000))).await;
                if tried == CONTENDED {
                    tracing::warn!(
                        key,
                        tries = tried,
                        "a lease record keeps changing under this instance's writes: many instances share its blocks"
                    );
                }
            }
            let (before, revision) = match fence::read(&self.inner.leases, key).await? {
                Some((block, revision)) => (block, Some(revision)),
                None => (Block::default(), None),
            };
            let mut block = before.clone();
            let decided = decide(&mut block);
            if block == before || fence::swap(&self.inner.leases, key, revision, &block).await?.is_some() {
                return Ok(decided);
            }
        }
        Err(BusError::Nats(format!("the lease record {key} changed under each of {TRIES} tries").into()))
    }
}
