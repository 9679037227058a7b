//! Active health checks: each instance is probed on its route's path and interval; it joins
//! the rotation after `healthy` passes in a row and leaves it after `unhealthy` failures.
//! Each check also closes the instance's connections idle too long.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

use crate::routes::Health;
use crate::upstream::Instance;

pub type CheckClient = Client<HttpConnector, Empty<bytes::Bytes>>;

/// Probes one instance until it is retired.
pub async fn watch(client: CheckClient, instance: Arc<Instance>, health: Health, route: String) {
    let (mut passes, mut failures) = (0u32, 0u32);
    loop {
        if instance.retired.load(Ordering::Relaxed) {
            return;
        }
        let uri = format!("http://{}{}", instance.addr, health.path);
        let ok = match uri.parse::<hyper::Uri>() {
            Ok(uri) => matches!(
                tokio::time::timeout(health.timeout, client.get(uri)).await,
                Ok(Ok(res)) if res.status().is_success()
            ),
            Err(_) => false,
        };
        let was = instance.healthy.load(Ordering::Relaxed);
        if ok {
            failures = 0;
            passes += 1;
            if !was && passes >= health.healthy {
                instance.healthy.store(true, Ordering::Relaxed);
                tracing::info!(route, instance = %instance.addr, "instance healthy: in rotation");
                instance.settle();
            }
        } else {
            passes = 0;
            failures += 1;
            instance.settle();
            if was && failures >= health.unhealthy {
                instance.healthy.store(false, Ordering::Relaxed);
                tracing::warn!(route, instance = %instance.addr, "instance unhealthy: out of rotation");
            }
        }
        let closed = instance.pool.close_idle(crate::upstream::IDLE_TIMEOUT);
        if closed > 0 {
            tracing::debug!(route, instance = %instance.addr, closed, "idle connections closed");
        }
        tokio::time::sleep(health.interval).await;
    }
}
