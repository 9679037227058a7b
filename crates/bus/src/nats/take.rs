//! A claim's work on a fetched batch: each message becomes a delivery under a lease, or is
//! settled on the spot (an event not yet due goes back until its time; one done already is
//! acknowledged again). One read of each block's record, and one write where a message was
//! taken over or held back.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream;
use chrono::Utc;

use super::JsBus;
use super::envelope::Envelope;
use super::fence::{Block, Spot};
use super::records::Mine;
use crate::backend::Result;
use crate::message::Delivery;

/// The longest a claim waits for the server to answer a pull request.
pub(super) const FETCH_WAIT: Duration = Duration::from_secs(5);

/// Each consumer's acknowledgement wait: a delivery comes back this long after it was sent
/// unless acknowledged or put off (a claim with another lease puts it off by that lease).
pub(super) const ACK_WAIT: Duration = Duration::from_secs(30);

/// A fetched message, read.
struct Fetched {
    envelope: Envelope,
    reply: String,
    spot: Spot,
    /// How many times JetStream has delivered it, this time included.
    delivered: i64,
}

/// What a claim does with one message, decided on its block's record.
enum Verdict {
    /// Done already (a redelivery after the server lost the acknowledgement): acknowledge.
    Done,
    /// Not due: back until its time.
    Wait(Duration),
    /// Handle it as this attempt.
    Take(i32),
}

impl JsBus {
    /// Turns fetched messages into deliveries under a lease, or settles them.
    pub(super) async fn take(
        &self,
        group: &str,
        messages: Vec<jetstream::Message>,
        lease: Duration,
    ) -> Result<Vec<Delivery>> {
        let mut blocks: HashMap<String, Vec<Fetched>> = HashMap::new();
        for message in messages {
            if let Some(fetched) = self.read(message).await? {
                blocks.entry(fetched.spot.key.clone()).or_default().push(fetched);
            }
        }
        let taken = futures_util::future::join_all(
            blocks.into_iter().map(|(key, batch)| self.take_block(group, key, batch, lease)),
        );
        let mut claimed = Vec::new();
        for deliveries in taken.await {
            claimed.extend(deliveries?);
        }
        Ok(claimed)
    }

    /// Reads a fetched message; an unreadable one is terminated (`None`).
    async fn read(&self, message: jetstream::Message) -> Result<Option<Fetched>> {
        let Some(reply) = message.reply.as_ref().map(|r| r.as_str().to_owned()) else { return Ok(None) };
        let (spot, delivered) = match message.info() {
            Ok(info) => (Spot::of(info.consumer, info.stream_sequence), info.delivered),
            Err(error) => {
                tracing::error!(%error, subject = %message.subject, "a delivery without JetStream's metadata; terminated");
                self.settle(&reply, jetstream::AckKind::Term).await?;
                return Ok(None);
            }
        };
        match serde_json::from_slice(&message.payload) {
            Ok(envelope) => Ok(Some(Fetched { envelope, reply, spot, delivered })),
            Err(error) => {
                tracing::error!(%error, subject = %message.subject, "an unreadable event on the bus; terminated");
                self.settle(&reply, jetstream::AckKind::Term).await?;
                Ok(None)
            }
        }
    }

    /// Decides on one block's messages (one read, and one write if any was taken over or held
    /// back), then settles or leases each.
    async fn take_block(
        &self,
        group: &str,
        key: String,
        batch: Vec<Fetched>,
        lease: Duration,
    ) -> Result<Vec<Delivery>> {
        let now = Utc::now();
        let verdicts = self
            .amend(&key, |block| batch.iter().map(|f| verdict(block, f, now)).collect::<Vec<_>>())
            .await?;
        let mut claimed = Vec::new();
        let mut mine = Vec::new();
        for (fetched, verdict) in batch.into_iter().zip(verdicts) {
            match verdict {
                Verdict::Done => self.settle(&fetched.reply, jetstream::AckKind::Ack).await?,
                Verdict::Wait(wait) => self.redeliver_in(&fetched.reply, Some(wait)).await?,
                Verdict::Take(attempt) => {
                    // The consumer's own acknowledgement wait is the lease when they agree.
                    if lease != ACK_WAIT {
                        self.redeliver_in(&fetched.reply, Some(lease)).await?;
                    }
                    let delivery = fetched.envelope.delivery(group, attempt);
                    let group = delivery.group.clone();
                    mine.push((
                        delivery.id,
                        Mine { group, attempt, reply: fetched.reply, spot: fetched.spot },
                    ));
                    claimed.push(delivery);
                }
            }
        }
        self.remember(mine)?;
        Ok(claimed)
    }
}

/// What to do with a fetched message, given its block's record (which this changes where a
/// claim must be recorded).
fn verdict(block: &mut Block, fetched: &Fetched, now: chrono::DateTime<Utc>) -> Verdict {
    let offset = fetched.spot.offset;
    if block.is_done(offset) {
        return Verdict::Done;
    }
    if let Some(at) = fetched.envelope.deliver_at
        && let Ok(wait) = (at - now).to_std()
        && !wait.is_zero()
    {
        // Recorded as no attempt yet, so its first delivery when due is not taken for a
        // takeover of a first attempt.
        if block.held(offset).is_none() {
            block.set_held(offset, 0);
        }
        return Verdict::Wait(wait);
    }
    let attempt = match block.held(offset) {
        // A first delivery, the common case: nothing is written until the attempt ends (or
        // another claim takes it over, which writes its attempt and so fences this one).
        None if fetched.delivered <= 1 => return Verdict::Take(1),
        // Delivered before without a record: a first attempt whose lease ran out.
        None => 2,
        Some(held) => held + 1,
    };
    block.set_held(offset, attempt);
    Verdict::Take(attempt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetched(delivered: i64, deliver_at: Option<chrono::DateTime<Utc>>) -> Fetched {
        let envelope = Envelope {
            id: uuid::Uuid::now_v7(),
            topic: "job".into(),
            payload: serde_json::Value::Null,
            headers: serde_json::json!({}),
            published_at: Utc::now(),
            deliver_at,
        };
        Fetched { envelope, reply: "$JS.ACK.x".into(), spot: Spot::of("g--job", 7), delivered }
    }

    #[test]
    fn a_first_delivery_is_attempt_one_and_writes_nothing() {
        let mut block = Block::default();
        assert!(matches!(verdict(&mut block, &fetched(1, None), Utc::now()), Verdict::Take(1)));
        assert_eq!(block, Block::default(), "nothing to write");
    }

    #[test]
    fn a_redelivery_without_an_entry_is_a_takeover_that_fences_the_first_attempt() {
        let mut block = Block::default();
        assert!(matches!(verdict(&mut block, &fetched(2, None), Utc::now()), Verdict::Take(2)));
        assert!(block.is_current(7, 2) && !block.is_current(7, 1));
        assert!(matches!(verdict(&mut block, &fetched(3, None), Utc::now()), Verdict::Take(3)));
        assert!(block.is_current(7, 3) && !block.is_current(7, 2));
    }

    #[test]
    fn a_done_message_is_acknowledged_again_and_a_held_back_one_waits_as_attempt_zero() {
        let mut block = Block::default();
        block.set_done(7);
        assert!(matches!(verdict(&mut block, &fetched(1, None), Utc::now()), Verdict::Done));
        let mut block = Block::default();
        let later = Utc::now() + chrono::Duration::seconds(60);
        assert!(matches!(verdict(&mut block, &fetched(1, Some(later)), Utc::now()), Verdict::Wait(_)));
        assert_eq!(block.held(7), Some(0));
        // When due, its next delivery is its first attempt, not a takeover.
        assert!(matches!(verdict(&mut block, &fetched(2, Some(later)), later), Verdict::Take(1)));
    }
}
