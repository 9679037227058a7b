//! How an event travels in JetStream: one JSON body with everything a delivery needs, and the
//! names (subjects, consumers, keys) the backend derives from topics and groups.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::BusError;
use crate::message::{Delivery, Publish};

/// A message's body in the stream.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Envelope {
    #[serde(serialize_with = "super::stamp::id")]
    pub(super) id: Uuid,
    pub(super) topic: String,
    pub(super) payload: Value,
    pub(super) headers: Value,
    #[serde(with = "super::stamp")]
    pub(super) published_at: DateTime<Utc>,
    #[serde(with = "super::stamp::optional", default)]
    pub(super) deliver_at: Option<DateTime<Utc>>,
}

/// An [`Envelope`] to encode, borrowed from what is published: nothing is copied first.
#[derive(Debug, Serialize)]
pub(super) struct Outgoing<'a> {
    #[serde(serialize_with = "super::stamp::id")]
    id: Uuid,
    topic: &'a str,
    payload: &'a Value,
    headers: &'a Value,
    #[serde(serialize_with = "super::stamp::serialize")]
    published_at: DateTime<Utc>,
    #[serde(serialize_with = "super::stamp::optional::serialize")]
    deliver_at: Option<DateTime<Utc>>,
}

impl<'a> Outgoing<'a> {
    pub(super) fn of(m: &'a Publish) -> Self {
        Self {
            id: m.id,
            topic: &m.topic,
            payload: &m.payload,
            headers: &m.headers,
            published_at: Utc::now(),
            deliver_at: m.deliver_at,
        }
    }
}

impl Envelope {
    pub(super) fn delivery(self, group: &str, attempt: i32) -> Delivery {
        Delivery {
            id: self.id,
            group: group.to_string(),
            topic: self.topic,
            payload: self.payload,
            headers: self.headers,
            attempt,
            published_at: self.published_at,
        }
    }
}

/// A topic as one or more subject tokens: letters, digits, `_`, `-`, separated by single dots.
pub(super) fn check_topic(topic: &str) -> Result<(), BusError> {
    let token =
        |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if topic.split('.').all(token) {
        Ok(())
    } else {
        Err(BusError::Invalid(format!(
            "the topic {topic:?} cannot travel on NATS: use letters, digits, '_' and '-', in parts separated by single dots"
        )))
    }
}

/// A group name: letters, digits, `_` and `-` (it names durable consumers and keys).
pub(super) fn check_group(group: &str) -> Result<(), BusError> {
    if !group.is_empty() && group.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        Ok(())
    } else {
        Err(BusError::Invalid(format!(
            "the group {group:?} cannot name a NATS consumer: use letters, digits, '_' and '-'"
        )))
    }
}

/// The durable consumer of `group` for `topic` (NATS 2.9 filters one subject per consumer).
pub(super) fn consumer_name(group: &str, topic: &str) -> String {
    // FNV-1a: stable across builds and short; topics of one group never collide in practice,
    // and a collision would only merge two of its subscriptions.
    let hash = topic
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("{group}--{hash:016x}")
}

/// The consumer that carries `group`'s retried dead letters.
pub(super) fn retry_consumer(group: &str) -> String {
    format!("{group}--retry")
}

/// The key of a message's record for a group (its dead letter).
pub(super) fn lease_key(group: &str, id: Uuid) -> String {
    format!("{group}.{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_message_reads_back_as_the_envelope_it_was_encoded_from() {
        let m = Publish::new("user.created", serde_json::json!({ "email": "a@example.com" }));
        let encoded = serde_json::to_vec(&Outgoing::of(&m)).expect("encode");
        let read: Envelope = serde_json::from_slice(&encoded).expect("decode");
        assert_eq!((read.id, read.topic.as_str(), &read.payload), (m.id, "user.created", &m.payload));
        assert_eq!((read.headers, read.deliver_at), (m.headers, m.deliver_at));
    }

    #[test]
    fn topics_and_groups_that_nats_cannot_carry_are_refused_with_what_to_use() {
        assert!(check_topic("user.created").is_ok() && check_topic("bench_event-2").is_ok());
        for bad in ["", "user..created", ".user", "user.*", "user.>", "user created"] {
            let error = check_topic(bad).expect_err(bad).to_string();
            assert!(error.contains("letters, digits"), "{error}");
        }
        assert!(check_group("mailer").is_ok());
        assert!(check_group("mail.er").is_err() && check_group("").is_err());
        assert_ne!(consumer_name("g", "a.b"), consumer_name("g", "a_b"));
    }
}
