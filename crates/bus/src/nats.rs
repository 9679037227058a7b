//! The NATS JetStream backend: events in one stream, a durable pull consumer per group and
//! topic, and deliveries' attempts and fencing in a KV bucket (`fence`), so it keeps the
//! promises the conformance suite checks. Leases are JetStream's own redelivery timers (the
//! consumer's acknowledgement wait, or a delayed NAK for another lease); the fence decides
//! which attempt may acknowledge. A first attempt writes nothing at its claim: the claim reads
//! its block's record, and the completion marks it done there, which fails if a later attempt
//! took it over.

mod dead;
mod envelope;
mod fence;
mod records;
mod stamp;
mod take;
mod topology;
mod waiter;

pub use waiter::JsWaiter;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, kv, stream};
use chrono::Utc;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::backend::{Backend, BusError, Result};
use crate::message::{DeadLetter, Delivery, FailState, Group, Publish};
use envelope::{Envelope, Outgoing, check_group, check_topic, consumer_name, retry_consumer};
use records::Mine;

/// How long the stream keeps an event (a group that subscribes later gets what is retained).
const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// The window in which a second publish with the same id or dedupe key is dropped.
const DEDUPE_WINDOW: Duration = Duration::from_secs(120);

pub(crate) fn nats_error(e: impl std::error::Error + Send + Sync + 'static) -> BusError {
    BusError::Nats(Box::new(e))
}

fn unreachable(url: &str, error: &dyn std::fmt::Display) -> BusError {
    BusError::Nats(
        format!(
            "cannot reach NATS at {} ({error}): is nats-server running there with JetStream (-js)? \
         (SLIPWAY_BUS_URL names it)",
            crate::choice::redacted(url)
        )
        .into(),
    )
}

/// The JetStream bus: cheap to clone, one connection.
#[derive(Clone, Debug)]
pub struct JsBus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: stream::Stream,
    leases: kv::Store,
    dead: kv::Store,
    /// Subjects are `<namespace>.t.<topic>` and `<namespace>.r.<group>` (retried dead letters).
    namespace: String,
    groups: Mutex<HashMap<String, Policy>>,
    /// Each group's consumers, as last listed (a subscribe lists them again).
    consumers: Mutex<HashMap<String, Vec<consumer::PullConsumer>>>,
    /// The deliveries this process claimed and has not settled, by message id (one per group
    /// that claimed it): where each one's record is and the reply subject that settles it.
    known: Mutex<HashMap<Uuid, Vec<Mine>>>,
}

/// A group's retry policy, kept where every instance reads it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Policy {
    max_attempts: i32,
    backoff_base_ms: u64,
    backoff_max_ms: u64,
}

impl JsBus {
    /// An error naming the server while the connection to it is down (the client reconnects
    /// on its own), for readiness.
    pub fn connected(&self) -> std::result::Result<(), String> {
        match self.inner.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            state => Err(format!("NATS is {state:?}")),
        }
    }

    /// Connects to `url` (`nats://host:4222`) and makes the stream and buckets of `namespace`
    /// (`bus` in production; a fresh one per test).
    pub async fn connect(url: &str, namespace: &str) -> Result<Self> {
        if namespace.is_empty() || !namespace.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(BusError::Invalid(format!(
                "the bus namespace {namespace:?}: use letters, digits and '_'"
            )));
        }
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| unreachable(url, &e))?;
        let js = jetstream::new(client.clone());
        let name = namespace.to_ascii_uppercase();
        let stream = js
            .get_or_create_stream(stream::Config {
                name: format!("SLIPWAY_{name}"),
                subjects: vec![format!("{namespace}.>")],
                max_age: RETENTION,
                duplicate_window: DEDUPE_WINDOW,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(nats_error)?;
        let leases = topology::bucket(&js, &format!("SLIPWAY_{name}_LEASES")).await?;
        let dead = topology::bucket(&js, &format!("SLIPWAY_{name}_DEAD")).await?;
        let inner = Inner {
            client,
            js,
            stream,
            leases,
            dead,
            namespace: namespace.to_string(),
            groups: Mutex::default(),
            consumers: Mutex::default(),
            known: Mutex::default(),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Wakes the namespace's sleeping workers, after a publish the stream has stored: one plain
    /// message per batch on a subject outside the stream.
    async fn wake(&self) -> Result<()> {
        self.inner.client.publish(self.wake_subject(), bytes::Bytes::new()).await.map_err(nats_error)
    }

    /// `slipway-wake.<namespace>`: no namespace has a '-', so no stream's subjects take it in.
    fn wake_subject(&self) -> String {
        format!("slipway-wake.{}", self.inner.namespace)
    }

    fn topic_subject(&self, topic: &str) -> String {
        format!("{}.t.{topic}", self.inner.namespace)
    }

    fn retry_subject(&self, group: &str) -> String {
        format!("{}.r.{group}", self.inner.namespace)
    }
}

fn poisoned() -> BusError {
    BusError::Invalid("the bus's in-process state was poisoned by a panic".into())
}

fn backoff(policy: Policy, attempt: i32) -> Duration {
    let doublings = u32::try_from(attempt.saturating_sub(1)).unwrap_or(0).min(32);
    let full = policy.backoff_base_ms.saturating_mul(1 << doublings).min(policy.backoff_max_ms);
    // Jitter: between half and all of it.
    Duration::from_millis(full / 2 + full * random_below(1000) / 2000)
}

/// A random number below `n` (at least 1): enough to spread retries.
fn random_below(n: u64) -> u64 {
    u64::try_from(Uuid::new_v4().as_u128() % u128::from(n.max(1))).unwrap_or(0)
}

impl Backend for JsBus {
    type Waiter = JsWaiter;

    async fn publish(&self, message: &Publish) -> Result<Option<Uuid>> {
        Ok(self.publish_many(std::slice::from_ref(message)).await?.pop().flatten())
    }

    /// Publishes in order and waits for every acknowledgement; unlike Postgres, not all or
    /// none (a failure midway leaves the earlier ones published).
    async fn publish_many(&self, messages: &[Publish]) -> Result<Vec<Option<Uuid>>> {
        for m in messages {
            m.check_size()?;
            check_topic(&m.topic)?;
        }
        let mut pending = Vec::with_capacity(messages.len());
        // A batch is mostly of one topic: its subject is made once, not per message.
        let mut subject: Option<(&str, async_nats::Subject)> = None;
        for m in messages {
            let body = serde_json::to_vec(&Outgoing::of(m)).map_err(|e| BusError::Invalid(e.to_string()))?;
            let mut headers = HeaderMap::new();
            match &m.dedupe_key {
                Some(key) => {
                    headers.insert(async_nats::header::NATS_MESSAGE_ID, format!("key:{key}").as_str())
                }
                None => headers.insert(
                    async_nats::header::NATS_MESSAGE_ID,
                    m.id.hyphenated().encode_lower(&mut Uuid::encode_buffer()) as &str,
                ),
            }
            let to = match &subject {
                Some((topic, to)) if *topic == m.topic => to.clone(),
                _ => subject.insert((&m.topic, self.topic_subject(&m.topic).into())).1.clone(),
            };
            let sent =
                self.inner.js.publish_with_headers(to, headers, body.into()).await.map_err(nats_error)?;
            pending.push((m.id, sent));
        }
        let mut ids = Vec::with_capacity(pending.len());
        for (id, sent) in pending {
            let ack = sent.await.map_err(nats_error)?;
            ids.push((!ack.duplicate).then_some(id));
        }
        if ids.iter().any(Option::is_some) {
            self.wake().await?;
        }
        Ok(ids)
    }

    async fn subscribe(&self, group: &Group, topics: &[&str]) -> Result<()> {
        check_group(&group.name)?;
        let policy = Policy {
            max_attempts: group.max_attempts,
            backoff_base_ms: u64::try_from(group.backoff_base.as_millis()).unwrap_or(u64::MAX),
            backoff_max_ms: u64::try_from(group.backoff_max.as_millis()).unwrap_or(u64::MAX),
        };
        let value = serde_json::to_vec(&policy).map_err(|e| BusError::Invalid(e.to_string()))?;
        self.inner.leases.put(format!("_groups.{}", group.name), value.into()).await.map_err(nats_error)?;
        self.inner.groups.lock().map_err(|_| poisoned())?.insert(group.name.clone(), policy);
        for topic in topics {
            check_topic(topic)?;
            self.durable(consumer_name(&group.name, topic), self.topic_subject(topic)).await?;
        }
        self.durable(retry_consumer(&group.name), self.retry_subject(&group.name)).await?;
        self.inner.consumers.lock().map_err(|_| poisoned())?.remove(&group.name);
        Ok(())
    }

    async fn claim(&self, group: &str, _worker: &str, max: usize, lease: Duration) -> Result<Vec<Delivery>> {
        let mut claimed = Vec::new();
        for consumer in self.consumers(group).await? {
            if claimed.len() >= max {
                break;
            }
            // Bounded: a pull request sent while the server restarts is never answered (seen
            // here: a worker waited on one forever while 128 events sat ready).
            let fetch = async {
                let mut batch = consumer
                    .fetch()
                    .max_messages(max - claimed.len())
                    .messages()
                    .await
                    .map_err(nats_error)?;
                let mut fetched = Vec::new();
                while let Some(message) = batch.next().await {
                    fetched.push(message.map_err(BusError::Nats)?);
                }
                Ok::<_, BusError>(fetched)
            };
            let fetched = tokio::time::timeout(take::FETCH_WAIT, fetch).await.map_err(|_| {
                BusError::Nats(format!("no answer to a pull request within {:?}", take::FETCH_WAIT).into())
            })??;
            claimed.extend(self.take(group, fetched, lease).await?);
        }
        claimed.sort_by_key(|d| d.published_at);
        Ok(claimed)
    }

    /// One read and one write per block of the records, whatever the number of deliveries in
    /// it; then an acknowledgement for each one done.
    async fn complete_many(&self, deliveries: &[Delivery]) -> Result<Vec<bool>> {
        let claims = self.take_mine(deliveries)?;
        let done = self.decide_each(&claims, |block, offset, attempt| {
            let current = block.is_current(offset, attempt);
            if current {
                block.set_done(offset);
            }
            current
        });
        let done = done.await?;
        for (mine, &done) in claims.iter().zip(&done) {
            if let (Some(mine), true) = (mine, done) {
                self.acknowledge(&mine.reply).await?;
            }
        }
        Ok(done)
    }

    /// One read per block of the records, then a NAK that puts each current one off.
    async fn extend_many(&self, deliveries: &[Delivery], lease: Duration) -> Result<Vec<bool>> {
        let claims = deliveries.iter().map(|d| self.mine(d)).collect::<Result<Vec<_>>>()?;
        let held = self.decide_each(&claims, |block, offset, attempt| block.is_current(offset, attempt));
        let held = held.await?;
        for (mine, &held) in claims.iter().zip(&held) {
            if let (Some(mine), true) = (mine, held) {
                self.redeliver_in(&mine.reply, Some(lease)).await?;
            }
        }
        Ok(held)
    }

    async fn extend(&self, d: &Delivery, lease: Duration) -> Result<bool> {
        Ok(self.extend_many(std::slice::from_ref(d), lease).await?.pop().unwrap_or(false))
    }

    async fn complete(&self, d: &Delivery) -> Result<bool> {
        Ok(self.complete_many(std::slice::from_ref(d)).await?.pop().unwrap_or(false))
    }

    async fn fail(&self, d: &Delivery, error: &str, permanent: bool) -> Result<FailState> {
        let Some(mine) = self.mine(d)? else { return Ok(FailState::Fenced) };
        let policy = self.policy(&d.group).await?;
        let dead = permanent || d.attempt >= policy.max_attempts;
        if dead {
            // The dead letter first: a crash before the record says done leaves a dead letter
            // for an event that may still run, never an event done and in no dead letter. One
            // there already: another attempt dead-lettered it, and this one is fenced.
            let envelope = Envelope {
                id: d.id,
                topic: d.topic.clone(),
                payload: d.payload.clone(),
                headers: d.headers.clone(),
                published_at: d.published_at,
                deliver_at: None,
            };
            let stored = dead::Stored {
                envelope,
                attempt: d.attempt,
                last_error: Some(error.to_string()),
                failed_at: Utc::now(),
            };
            if !dead::create(&self.inner.dead, &d.group, &stored).await? {
                self.forget(d)?;
                return Ok(FailState::Fenced);
            }
        }
        // Written either way: a claim racing this failure loses rather than both going on,
        // and the next claim counts this attempt.
        let current = self
            .amend(&mine.spot.key, |block| {
                let current = block.is_current(mine.spot.offset, d.attempt);
                if current && dead {
                    block.set_done(mine.spot.offset);
                } else if current {
                    block.set_held(mine.spot.offset, d.attempt);
                }
                current
            })
            .await?;
        if !current {
            if dead {
                // Its own, made just now for an attempt that turned out fenced.
                dead::remove(&self.inner.dead, &d.group, d.id).await?;
            }
            self.forget(d)?;
            return Ok(FailState::Fenced);
        }
        if !dead {
            self.redeliver_in(&mine.reply, Some(backoff(policy, d.attempt))).await?;
            return Ok(FailState::Retrying);
        }
        self.settle(&mine.reply, jetstream::AckKind::Term).await?;
        self.forget(d)?;
        Ok(FailState::Dead)
    }

    async fn release(&self, d: &Delivery) -> Result<bool> {
        let Some(mine) = self.mine(d)? else { return Ok(false) };
        let released = self
            .amend(&mine.spot.key, |block| {
                let current = block.is_current(mine.spot.offset, d.attempt);
                if current {
                    // One attempt back: the next claim is this attempt again.
                    block.set_held(mine.spot.offset, d.attempt - 1);
                }
                current
            })
            .await?;
        if released {
            // Confirmed: once this returns, the next claim finds it.
            self.settle(&mine.reply, jetstream::AckKind::Nak(None)).await?;
        }
        self.forget(d)?;
        Ok(released)
    }

    /// Wakes on any publish in the namespace, whatever the group: one subscription serves all.
    async fn waiter(&self, _group: &str) -> Result<JsWaiter> {
        // The wake subject, not the stream's: a copy of every event to every worker cost the
        // server and each worker more than the one message per published batch.
        let subscriber = self.inner.client.subscribe(self.wake_subject()).await.map_err(nats_error)?;
        Ok(JsWaiter { subscriber })
    }

    async fn dead_letters(&self, group: &str) -> Result<Vec<DeadLetter>> {
        dead::list(&self.inner.dead, group).await
    }

    async fn retry_dead(&self, group: &str, message: Uuid) -> Result<bool> {
        let Some(stored) = dead::get(&self.inner.dead, group, message).await? else { return Ok(false) };
        // The copy is a new message of the stream, with a place of its own in the records:
        // its attempts start again.
        let body = serde_json::to_vec(&stored.envelope).map_err(|e| BusError::Invalid(e.to_string()))?;
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, format!("retry:{}", Uuid::new_v4()).as_str());
        self.inner
            .js
            .publish_with_headers(self.retry_subject(group), headers, body.into())
            .await
            .map_err(nats_error)?
            .await
            .map_err(nats_error)?;
        self.wake().await?;
        dead::remove(&self.inner.dead, group, message).await?;
        Ok(true)
    }

    async fn discard_dead(&self, group: &str, message: Uuid) -> Result<bool> {
        if dead::get(&self.inner.dead, group, message).await?.is_none() {
            return Ok(false);
        }
        dead::remove(&self.inner.dead, group, message).await?;
        Ok(true)
    }

    async fn sweep(&self) -> Result<u64> {
        // The stream and the buckets expire their own records (RETENTION); a lease record is
        // replaced by its next write.
        Ok(0)
    }

    fn completes_in_transaction(&self) -> bool {
        false
    }
}
