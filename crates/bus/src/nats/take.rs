//! A claim's work on one fetched message: a delivery under a lease, or settled on the spot
//! (an event not yet due goes back until its time; one done already is acknowledged again).

use std::time::Duration;

use async_nats::jetstream;
use chrono::Utc;

use super::JsBus;
use super::envelope::{Envelope, lease_key};
use super::fence::{self, Lease};
use crate::backend::Result;
use crate::message::Delivery;

/// The longest a claim waits for the server to answer a pull request.
pub(super) const FETCH_WAIT: Duration = Duration::from_secs(5);

/// Each consumer's acknowledgement wait: a delivery comes back this long after it was sent
/// unless acknowledged or put off (a claim with another lease puts it off by that lease).
pub(super) const ACK_WAIT: Duration = Duration::from_secs(30);

impl JsBus {
    /// Turns one fetched message into a delivery under a lease, or settles it: a delayed
    /// event goes back until its time, one done already is acknowledged again. The attempt
    /// is 1 for a message never taken (no record), else one more than its record's.
    pub(super) async fn take(
        &self,
        group: &str,
        message: jetstream::Message,
        lease: Duration,
    ) -> Result<Option<Delivery>> {
        let Some(reply) = message.reply.as_ref().map(ToString::to_string) else { return Ok(None) };
        let envelope: Envelope = match serde_json::from_slice(&message.payload) {
            Ok(e) => e,
            Err(error) => {
                tracing::error!(%error, subject = %message.subject, "an unreadable event on the bus; terminated");
                self.settle(&reply, jetstream::AckKind::Term).await?;
                return Ok(None);
            }
        };
        let key = lease_key(group, envelope.id);
        // One read: done already, taken before, or not (most: a first delivery).
        let record = fence::read(&self.inner.leases, &key).await?;
        if let Some(at) = envelope.deliver_at
            && let Ok(wait) = (at - Utc::now()).to_std()
            && !wait.is_zero()
        {
            // Not due: back until its time, with a record of no attempt yet, so its first
            // delivery when due is not taken for a takeover of a first attempt.
            if record.is_none() {
                self.write(&key, None, Lease { attempt: 0, reply: reply.clone(), done: false }).await?;
            }
            self.redeliver_in(&reply, Some(wait)).await?;
            return Ok(None);
        }
        let attempt = match record {
            // A first delivery, the common case: no record is written until the attempt ends
            // (or another claim takes it over, which writes one and so fences this one).
            None if delivered(&message) <= 1 => {
                self.claimed_first(&key, reply.clone())?;
                1
            }
            // Delivered before without a record: a first attempt whose lease ran out.
            None => {
                let next = Lease { attempt: 2, reply: reply.clone(), done: false };
                if self.write(&key, None, next).await?.is_none() {
                    return Ok(None); // another instance took it, or it was just completed
                }
                2
            }
            Some(held) if held.lease.done => {
                // Acknowledged again; the record stays its while longer, as after a completion.
                self.settle(&reply, jetstream::AckKind::Ack).await?;
                self.settled(key, held.revision)?;
                return Ok(None);
            }
            Some(held) => {
                let attempt = held.lease.attempt + 1;
                let next = Lease { attempt, reply: reply.clone(), done: false };
                if self.write(&key, Some(held.revision), next).await?.is_none() {
                    return Ok(None); // another instance took it first
                }
                attempt
            }
        };
        // The consumer's own acknowledgement wait is the lease when they agree: no request.
        if lease != ACK_WAIT {
            self.redeliver_in(&reply, Some(lease)).await?;
        }
        Ok(Some(envelope.delivery(group, attempt)))
    }
}

/// How many times JetStream has delivered the message (from its reply subject); 1 if unknown.
fn delivered(message: &jetstream::Message) -> i64 {
    message.info().map_or(1, |info| info.delivered)
}
