//! What travels on the bus: events to publish, deliveries to handle, dead letters.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

/// An event to publish.
#[derive(Debug, Clone)]
pub struct Publish {
    pub id: Uuid,
    pub topic: String,
    pub payload: Value,
    /// Carried to the handler: `request_id` ties the handler's logs to the request that caused it.
    pub headers: Value,
    /// A second publish with the same key inside the dedupe window is a no-op.
    pub dedupe_key: Option<String>,
    /// Not delivered before this time.
    pub deliver_at: Option<DateTime<Utc>>,
}

impl Publish {
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

    pub fn request_id(mut self, request_id: Option<&str>) -> Self {
        if let Some(id) = request_id {
            self.headers["request_id"] = json!(id);
        }
        self
    }

    pub fn dedupe_key(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }

    pub fn deliver_at(mut self, at: DateTime<Utc>) -> Self {
        self.deliver_at = Some(at);
        self
    }
}

/// A claimed event, held under a lease until completed, failed or released. `attempt`
/// fences: only the current attempt's completion counts.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: Uuid,
    pub group: String,
    pub topic: String,
    pub payload: Value,
    pub headers: Value,
    pub attempt: i32,
    pub published_at: DateTime<Utc>,
}

impl Delivery {
    pub fn request_id(&self) -> Option<&str> {
        self.headers.get("request_id").and_then(Value::as_str)
    }
}

/// A consumer group and its retry policy.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: i32,
    /// The first retry waits about this long; each next one twice as long, with jitter.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Group {
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

#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub message_id: Uuid,
    pub topic: String,
    pub attempt: i32,
    pub last_error: Option<String>,
    pub failed_at: DateTime<Utc>,
    pub payload: Value,
}
