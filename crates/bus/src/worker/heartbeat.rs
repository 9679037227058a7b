//! Leases kept alive in batches: one task extends every delivery its worker holds, each third
//! of the lease, in one statement — not a timer and a round trip per delivery.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;

use crate::backend::Backend;
use crate::message::Delivery;

/// The deliveries a worker's handlers hold: each message's id and the attempt holding it.
#[derive(Debug, Clone, Default)]
pub(super) struct InFlight(Arc<Mutex<HashMap<Uuid, i32>>>);

/// A delivery's place in [`InFlight`], given up when dropped.
pub(super) struct Held {
    in_flight: InFlight,
    id: Uuid,
    attempt: i32,
}

impl InFlight {
    /// Keeps `delivery`'s lease alive until the returned guard is dropped.
    pub(super) fn hold(&self, delivery: &Delivery) -> Held {
        self.map().insert(delivery.id, delivery.attempt);
        Held { in_flight: self.clone(), id: delivery.id, attempt: delivery.attempt }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, i32>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut map = self.in_flight.map();
        if map.get(&self.id) == Some(&self.attempt) {
            map.remove(&self.id);
        }
    }
}

/// Extends the leases of everything in `in_flight` every third of `lease`, until aborted. A
/// delivery a newer attempt took over is logged and no longer extended; its handler's result
/// will be ignored (fencing).
pub(super) async fn run<B: Backend>(backend: B, group: String, in_flight: InFlight, lease: Duration) {
    loop {
        tokio::time::sleep(lease / 3).await;
        let held: Vec<Delivery> = in_flight
            .map()
            .iter()
            .map(|(&id, &attempt)| Delivery {
                id,
                group: group.clone(),
                topic: String::new(),
                payload: Value::Null,
                headers: Value::Null,
                attempt,
                published_at: Utc::now(),
            })
            .collect();
        if held.is_empty() {
            continue;
        }
        match backend.extend_many(&held, lease).await {
            Ok(current) => {
                let mut map = in_flight.map();
                for (d, current) in held.iter().zip(current) {
                    if !current && map.get(&d.id) == Some(&d.attempt) {
                        map.remove(&d.id);
                        tracing::warn!(group, message_id = %d.id, attempt = d.attempt,
                            "lease lost to a newer attempt; this attempt's result will be ignored");
                    }
                }
            }
            Err(error) => tracing::warn!(group, held = held.len(), %error, "extending the leases failed"),
        }
    }
}
