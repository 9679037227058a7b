//! Each delivery's lease record in a KV bucket: its attempt (a fencing token), the reply
//! subject that acknowledges its current JetStream delivery, and whether it is done. JetStream
//! accepts an acknowledgement from any delivery of a message, a stale one too (seen on 2.9),
//! so every completion, extension and failure first checks and swaps this record. A first
//! attempt has none until it ends (its completion creates the done record); any later claim
//! writes one, which is what fences the earlier attempt.

use async_nats::jetstream::kv::{Operation, Store};
use serde::{Deserialize, Serialize};

use super::nats_error;
use crate::BusError;

/// What the bucket holds for a delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Lease {
    pub(super) attempt: i32,
    pub(super) reply: String,
    #[serde(default)]
    pub(super) done: bool,
}

/// A record with the revision a compare-and-swap needs.
#[derive(Debug, Clone)]
pub(super) struct Held {
    pub(super) lease: Lease,
    pub(super) revision: u64,
}

/// The current record, if any (a deleted one counts as none).
pub(super) async fn read(kv: &Store, key: &str) -> Result<Option<Held>, BusError> {
    let Some(entry) = kv.entry(key).await.map_err(nats_error)? else { return Ok(None) };
    if entry.operation != Operation::Put {
        return Ok(None);
    }
    let lease = serde_json::from_slice(&entry.value)
        .map_err(|e| BusError::Invalid(format!("the lease record {key} is unreadable: {e}")))?;
    Ok(Some(Held { lease, revision: entry.revision }))
}

/// Writes `lease` if the record is still at `revision` (`None`: if there is none); its new
/// revision, or `None` if another instance changed it first.
pub(super) async fn swap(
    kv: &Store,
    key: &str,
    revision: Option<u64>,
    lease: &Lease,
) -> Result<Option<u64>, BusError> {
    use async_nats::jetstream::kv::{CreateErrorKind, UpdateErrorKind};
    let value: bytes::Bytes = serde_json::to_vec(lease).map_err(|e| BusError::Invalid(e.to_string()))?.into();
    match revision {
        Some(revision) => match kv.update(key, value, revision).await {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => Err(nats_error(e)),
        },
        None => match kv.create(key, value).await {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(nats_error(e)),
        },
    }
}

/// The record of `attempt`, if it is still the current one and not done.
pub(super) async fn current(kv: &Store, key: &str, attempt: i32) -> Result<Option<Held>, BusError> {
    Ok(read(kv, key).await?.filter(|h| h.lease.attempt == attempt && !h.lease.done))
}
