//! What travels on the bus: events to publish, deliveries to handle, dead letters.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

/// An event to publish.
#[derive(Debug, Clone)]
pub struct Publish {
    /// The message's id (UUIDv7): the same for every group it reaches.
    pub id: Uuid,
    /// The topic subscribers choose it by (`account.created`).
    pub topic: String,
    /// The event's JSON body.
    pub payload: Value,
    /// Carried to the handler: `request_id` ties the handler's logs to the request that caused it.
    pub headers: Value,
    /// A second publish with the same key inside the dedupe window is a no-op.
    pub dedupe_key: Option<String>,
    /// Not delivered before this time.
    pub deliver_at: Option<DateTime<Utc>>,
}

/// The largest message the bus takes: its payload and headers as JSON, together (NATS's
/// default `max_payload` too, so a message fits either backend).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

impl Publish {
    /// Refuses a message over [`MAX_MESSAGE_BYTES`] before it goes anywhere.
    pub(crate) fn check_size(&self) -> Result<(), crate::BusError> {
        let bytes = self.size();
        if bytes > MAX_MESSAGE_BYTES {
            return Err(crate::BusError::TooLarge {
                topic: self.topic.clone(),
                bytes,
                limit: MAX_MESSAGE_BYTES,
            });
        }
        Ok(())
    }

    /// Its payload's and headers' size, as JSON the way Postgres prints it.
    pub(crate) fn size(&self) -> usize {
        json_len(&self.payload) + json_len(&self.headers)
    }

    /// An event on `topic` with a fresh id, delivered at once.
    pub fn new(topic: impl Into<String>, payload: Value) -> Self {
        Self {
            id: Uuid::now_v7(),
            topic: topic.into(),
            payload,
            headers: json!({}),
            dedupe_key: None,
            deliver_at: None,
        }
    }

    /// Carries the request id, if any, to the handlers' logs.
    pub fn request_id(mut self, request_id: Option<&str>) -> Self {
        if let Some(id) = request_id {
            self.headers["request_id"] = json!(id);
        }
        self
    }

    /// Publishes only once per `key` inside the dedupe window.
    pub fn dedupe_key(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }

    /// Holds the event back until `at`.
    pub fn deliver_at(mut self, at: DateTime<Utc>) -> Self {
        self.deliver_at = Some(at);
        self
    }
}

/// A claimed event, held under a lease until completed, failed or released. `attempt`
/// fences: only the current attempt's completion counts.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The message's id, the publisher's.
    pub id: Uuid,
    /// The group that claimed it.
    pub group: String,
    /// Its topic.
    pub topic: String,
    /// Its JSON body.
    pub payload: Value,
    /// Its headers (`request_id`).
    pub headers: Value,
    /// Which attempt this is, from 1; a fencing token for the completion.
    pub attempt: i32,
    /// When it was published.
    pub published_at: DateTime<Utc>,
}

impl Delivery {
    /// The id of the request that published it, for the handler's logs.
    pub fn request_id(&self) -> Option<&str> {
        self.headers.get("request_id").and_then(Value::as_str)
    }
}

/// A consumer group and its retry policy.
#[derive(Debug, Clone)]
pub struct Group {
    /// The group's name; normally the service's.
    pub name: String,
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: i32,
    /// The first retry waits about this long; each next one twice as long, with jitter.
    pub backoff_base: Duration,
    /// No retry waits longer than this.
    pub backoff_max: Duration,
}

impl Group {
    /// A group with the default policy: 10 attempts, backoff from 1 s up to an hour.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            max_attempts: 10,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(3600),
        }
    }
}

/// What became of a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailState {
    /// Scheduled again after a backoff.
    Retrying,
    /// Out of attempts, or permanent: kept as a dead letter with its error.
    Dead,
    /// A newer attempt holds the delivery; this one's report was ignored.
    Fenced,
}

/// A delivery that ran out of attempts or failed permanently, kept with its last error.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The message's id.
    pub message_id: Uuid,
    /// Its topic.
    pub topic: String,
    /// How many attempts were made.
    pub attempt: i32,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When it was dead-lettered.
    pub failed_at: DateTime<Utc>,
    /// Its JSON body.
    pub payload: Value,
}

/// The length of `value` as JSON the way Postgres prints `jsonb` (`{"a": 1, "b": [1, 2]}`: a
/// space after every colon and comma), so the check here and the database's agree.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    fn spaces(value: &Value) -> usize {
        match value {
            Value::Object(map) => (2 * map.len()).saturating_sub(1) + map.values().map(spaces).sum::<usize>(),
            Value::Array(items) => items.len().saturating_sub(1) + items.iter().map(spaces).sum::<usize>(),
            _ => 0,
        }
    }
    let mut count = Count(0);
    // Writing a Value to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0 + spaces(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_counted_as_postgres_prints_jsonb() {
        let value = json!({ "a": 1, "b": [1, 2, { "c": "x, y: z" }], "d": {} });
        let printed = r#"{"a": 1, "b": [1, 2, {"c": "x, y: z"}], "d": {}}"#;
        assert_eq!(json_len(&value), printed.len());
        assert_eq!(json_len(&json!({})), 2);
    }

    #[test]
    fn a_message_over_the_limit_is_refused_with_its_topic_and_size() {
        let big = Publish::new("files.uploaded", json!({ "data": "x".repeat(MAX_MESSAGE_BYTES) }));
        match big.check_size() {
            Err(crate::BusError::TooLarge { topic, bytes, limit }) => {
                assert_eq!((topic.as_str(), limit), ("files.uploaded", MAX_MESSAGE_BYTES));
                assert!(bytes > MAX_MESSAGE_BYTES);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        let fits = Publish::new("files.uploaded", json!({ "data": "x".repeat(MAX_MESSAGE_BYTES - 100) }));
        assert!(fits.check_size().is_ok());
    }
}
