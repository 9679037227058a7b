//! How a JetStream worker waits for work without busy polling.

use std::time::Duration;

use futures_util::{FutureExt as _, StreamExt as _};

use crate::backend::Waiter;

/// The longest a waiting worker sleeps without looking: retries and expired leases come back
/// without a publish to wake it.
const LOOK_AGAIN: Duration = Duration::from_millis(500);

/// Sleeps until something is published on the bus, or a little while: retries and expired
/// leases come back without a publish.
#[derive(Debug)]
pub struct JsWaiter {
    pub(super) subscriber: async_nats::Subscriber,
}

impl Waiter for JsWaiter {
    async fn wait(&mut self, max: Duration) {
        if tokio::time::timeout(max.min(LOOK_AGAIN), self.subscriber.next()).await.is_ok() {
            // Drain what else came at once: one claim serves it all.
            while let Some(Some(_)) = self.subscriber.next().now_or_never() {}
        }
    }
}
