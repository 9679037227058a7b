//! Rate limiting per client and route: GCRA (a token bucket kept as one timestamp per key).
//! Clients are counted by [`kit::client_ip::bucket`] (IPv6 per /64).
//!
//! The keys are spread over shards, each behind its own lock, and a shard drops its expired
//! keys at most once a second once it holds many: a flood of distinct clients costs each
//! request a constant amount of work, not a walk over every key under one lock. A key is hashed
//! once, with foldhash's quality hasher under a per-process random seed (clients choose their
//! addresses, so the hash must not be predictable; SipHash cost ~150 instructions a request
//! here, the most of any step of the limiter): the hash picks the shard and finds the key in it.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kit::config::Rate;

const SHARDS: usize = 32;
/// Keys a shard holds before it starts sweeping expired ones.
const SWEEP_ABOVE: usize = 4096;
const SWEEP_EVERY: Duration = Duration::from_secs(1);

type Key = (u64, IpAddr);

#[derive(Debug, Default)]
struct Shard {
    /// (route key, client) and the theoretical arrival time of its next request.
    tat: hashbrown::HashTable<(Key, Instant)>,
    swept: Option<Instant>,
}

#[derive(Debug)]
pub struct Limiter {
    shards: Vec<Mutex<Shard>>,
    hasher: foldhash::quality::RandomState,
}

impl Default for Limiter {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: foldhash::quality::RandomState::default(),
        }
    }
}

impl Limiter {
    /// `Ok` if allowed, else `Err(seconds to wait)`. A burst of `max` is allowed, refilled evenly over `per`.
    /// `route` is a route's [`crate::routes::Route::key`]: no string is built per request.
    /// `now`: when the request came.
    pub fn check(&self, route: u64, client: IpAddr, rate: Rate, now: Instant) -> Result<(), u64> {
        let interval = rate.per / rate.max.max(1);
        let burst = rate.per;
        let key = (route, client);
        let hash = self.hasher.hash_one(key);
        // The table uses the hash's low bits: the shard is picked by its high ones.
        let shard = &self.shards[(hash >> 58) as usize % SHARDS];
        let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
        if shard.tat.len() > SWEEP_ABOVE && shard.swept.is_none_or(|at| now.duration_since(at) >= SWEEP_EVERY)
        {
            shard.tat.retain(|(_, tat)| *tat > now);
            shard.swept = Some(now);
        }
        let rehash = |(k, _): &(Key, Instant)| self.hasher.hash_one(k);
        let (_, tat) = shard.tat.entry(hash, |(k, _)| *k == key, rehash).or_insert((key, now)).into_mut();
        let next = (*tat).max(now) + interval;
        if next.saturating_duration_since(now) > burst {
            let wait = next.saturating_duration_since(now) - burst;
            return Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        }
        *tat = next;
        Ok(())
    }

    /// Keys held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).tat.len()).sum()
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
        assert!((0..3).all(|_| limiter.check(1, ip, rate, Instant::now()).is_ok()));
        let wait = limiter.check(1, ip, rate, Instant::now()).expect_err("limited");
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(limiter.check(2, ip, rate, Instant::now()).is_ok(), "per route");
        assert!(limiter.check(1, [10, 0, 0, 2].into(), rate, Instant::now()).is_ok(), "per client");
    }

    #[test]
    fn expired_keys_are_swept_once_shards_fill_up() {
        let limiter = Limiter::default();
        let rate = Rate::new(1, Duration::from_millis(1));
        for n in 0..(SHARDS * SWEEP_ABOVE * 2) as u32 {
            let _ = limiter.check(1, IpAddr::from(n.to_be_bytes()), rate, Instant::now());
        }
        assert!(limiter.len() < SHARDS * SWEEP_ABOVE * 2, "expired keys were dropped: {}", limiter.len());
    }
}
