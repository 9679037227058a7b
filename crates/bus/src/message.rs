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

impl Publish {
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
