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

impl JsBus {
    /// Turns one fetched message into a delivery under a lease, or settles it: a delayed
    /// event goes back until its time, one done already is acknowledged again.
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
        if let Some(at) = envelope.deliver_at
            && let Ok(wait) = (at - Utc::now()).to_std()
            && !wait.is_zero()
        {
            self.redeliver_in(&reply, Some(wait)).await?;
            return Ok(None);
        }
        let key = lease_key(group, envelope.id);
        // The first delivery (most of them): create the record, one round trip.
        let first = Lease { attempt: 1, reply: reply.clone(), done: false };
        let attempt = if self.write(&key, None, first).await? {
            1
        } else {
            let Some(held) = fence::read(&self.inner.leases, &key).await? else { return Ok(None) };
            if held.lease.done {
                // Acknowledged again; the record stays its while longer, as after a completion.
                self.settle(&reply, jetstream::AckKind::Ack).await?;
                self.settled(key)?;
                return Ok(None);
            }
            let attempt = held.lease.attempt + 1;
            let next = Lease { attempt, reply: reply.clone(), done: false };
            if !self.write(&key, Some(held.revision), next).await? {
                return Ok(None); // another instance took it first
            }
            attempt
        };
        self.redeliver_in(&reply, Some(lease)).await?;
        Ok(Some(envelope.delivery(group, attempt)))
    }
}
