//! Whether a starting gateway may take connections: Docker's first listing is in, and every
//! instance it knows has had its health checks' verdict. A gateway that listened before then
//! would answer 404 or 503 for routes its predecessor serves.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::routes::Table;

/// The warm-up's progress, shared by the reloader, the health checks and `/readyz`.
#[derive(Debug, Default)]
pub struct Warm {
    /// Docker discovery has delivered its first listing (and the table holds it).
    pub discovered: AtomicBool,
    /// The public listeners take connections.
    pub listening: AtomicBool,
}

/// Waits until the gateway is warm, for at most `limit`; says what it waited for.
pub async fn wait(warm: &Warm, table: &ArcSwap<Table>, docker: bool, limit: Duration) {
    let started = Instant::now();
    loop {
        let discovered = !docker || warm.discovered.load(Ordering::Relaxed);
        let table = table.load();
        let unsettled = table.routes.iter().flat_map(|r| r.instances.iter()).filter(|i| !i.settled()).count();
        if discovered && unsettled == 0 {
            let instances: usize = table.routes.iter().map(|r| r.instances.len()).sum();
            tracing::info!(elapsed = ?started.elapsed(), instances, "warm: taking connections");
            return;
        }
        if started.elapsed() >= limit {
            tracing::warn!(
                ?limit,
                discovered,
                unsettled,
                "not warm within SLIPWAY_GATEWAY_WARM_UP: taking connections anyway"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
