//! Dead letters on NATS: a KV bucket keyed by group and message, each entry the event with its
//! last error, so `slipway bus dead list|retry|discard` works as on Postgres.

use async_nats::jetstream::kv::{Operation, Store};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt as _;
use serde::{Deserialize, Serialize};

use super::envelope::{Envelope, lease_key};
use super::nats_error;
use crate::BusError;
use crate::message::DeadLetter;

/// A dead letter as stored.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Stored {
    pub(super) envelope: Envelope,
    pub(super) attempt: i32,
    pub(super) last_error: Option<String>,
    pub(super) failed_at: DateTime<Utc>,
}

/// Stores a dead letter unless the group has one for the message already (another attempt
/// dead-lettered it): whether it did.
pub(super) async fn create(kv: &Store, group: &str, stored: &Stored) -> Result<bool, BusError> {
    use async_nats::jetstream::kv::CreateErrorKind;
    let value = serde_json::to_vec(stored).map_err(|e| BusError::Invalid(e.to_string()))?;
    match kv.create(lease_key(group, stored.envelope.id), value.into()).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(nats_error(e)),
    }
}

pub(super) async fn get(kv: &Store, group: &str, id: uuid::Uuid) -> Result<Option<Stored>, BusError> {
    let Some(entry) = kv.entry(lease_key(group, id)).await.map_err(nats_error)? else { return Ok(None) };
    if entry.operation != Operation::Put {
        return Ok(None);
    }
    serde_json::from_slice(&entry.value)
        .map(Some)
        .map_err(|e| BusError::Invalid(format!("the dead letter {} is unreadable: {e}", entry.key)))
}

pub(super) async fn remove(kv: &Store, group: &str, id: uuid::Uuid) -> Result<(), BusError> {
    kv.delete(lease_key(group, id)).await.map_err(nats_error)
}

/// The group's dead letters, oldest first.
pub(super) async fn list(kv: &Store, group: &str) -> Result<Vec<DeadLetter>, BusError> {
    let prefix = format!("{group}.");
    let keys: Vec<String> = match kv.keys().await {
        Ok(keys) => keys.try_collect().await.map_err(nats_error)?,
        Err(e) => return Err(nats_error(e)),
    };
    let mut letters = Vec::new();
    for key in keys.iter().filter(|k| k.starts_with(&prefix)) {
        let Ok(id) = key[prefix.len()..].parse() else { continue };
        if let Some(s) = get(kv, group, id).await? {
            letters.push(DeadLetter {
                message_id: s.envelope.id,
                topic: s.envelope.topic,
                attempt: s.attempt,
                last_error: s.last_error,
                failed_at: s.failed_at,
                payload: s.envelope.payload,
            });
        }
    }
    letters.sort_by_key(|d| d.failed_at);
    Ok(letters)
}
