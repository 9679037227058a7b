//! Rate limiting per client IP and route: GCRA (a token bucket kept as one timestamp per key).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use kit::config::Rate;

#[derive(Debug, Default)]
pub struct Limiter {
    /// (route key, client) → theoretical arrival time of the next request.
    tat: Mutex<HashMap<(u64, IpAddr), Instant>>,
}

impl Limiter {
    /// `Ok` if allowed, else `Err(seconds to wait)`. A burst of `max` is allowed, refilled evenly over `per`.
    /// `route` is a route's [`crate::routes::Route::key`]: no string is built per request.
    pub fn check(&self, route: u64, client: IpAddr, rate: Rate) -> Result<(), u64> {
        let interval = rate.per / rate.max.max(1);
        let burst = rate.per;
        let now = Instant::now();
        let mut map = self.tat.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, tat| *tat > now);
        }
        let tat = map.entry((route, client)).or_insert(now);
        let next = (*tat).max(now) + interval;
        if next.saturating_duration_since(now) > burst {
            let wait = next.saturating_duration_since(now) - burst;
            return Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        }
        *tat = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_is_allowed_then_requests_wait_for_the_bucket_to_refill() {
        let limiter = Limiter::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let rate = Rate::new(3, Duration::from_secs(60));
        assert!((0..3).all(|_| limiter.check(1, ip, rate).is_ok()));
        let wait = limiter.check(1, ip, rate).expect_err("limited");
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(limiter.check(2, ip, rate).is_ok(), "per route");
        assert!(limiter.check(1, [10, 0, 0, 2].into(), rate).is_ok(), "per client");
    }
}
