//! Instances of a route and how one is picked: healthy, not ejected, and of two random ones
//! the one with fewer requests in flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;

mod answer;
mod conn;
mod framing;
mod passed;
mod pool;

#[cfg(test)]
pub use conn::encode_head;
pub use conn::{Conn, Failure as SendError, Set};
pub use framing::{HOP_BY_HOP, connection_has, idempotent};
pub use passed::Passed;
pub use pool::{IDLE_TIMEOUT, Pool, Upgraded};

/// One backend address. Starts unhealthy: it gets traffic only after passing a check.
#[derive(Debug)]
pub struct Instance {
    pub addr: SocketAddr,
    pub healthy: AtomicBool,
    pub outstanding: AtomicUsize,
    /// Until when passive ejection keeps it out ([`millis`]).
    ejected_until: AtomicU64,
    error_streak: AtomicUsize,
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    /// Set when the instance leaves the routes: its health checker stops.
    pub retired: AtomicBool,
    /// Set once its checks have a verdict: in rotation, or a check failed.
    settled: AtomicBool,
    /// Connections to it.
    pub pool: Pool,
}

/// Consecutive 5xx answers that eject an instance.
const FIVE_XX_STREAK: usize = 5;
/// How long an ejected instance stays out.
const EJECTION: Duration = Duration::from_secs(5);

/// Milliseconds from the process's first use of this clock to `at`: ejections are timed on
/// the monotonic clock, and a pick reckons from its request's arrival (no clock read of its
/// own).
fn millis(at: Instant) -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    at.saturating_duration_since(base).as_millis() as u64
}

impl Instance {
    pub fn new(addr: SocketAddr) -> Arc<Self> {
        Arc::new(Self {
            addr,
            healthy: AtomicBool::new(false),
            outstanding: AtomicUsize::new(0),
            ejected_until: AtomicU64::new(0),
            error_streak: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            retired: AtomicBool::new(false),
            settled: AtomicBool::new(false),
            pool: Pool::default(),
        })
    }

    /// Whether its health checks have a verdict yet (what a starting gateway waits for).
    pub fn settled(&self) -> bool {
        self.settled.load(Ordering::Relaxed)
    }

    pub fn settle(&self) {
        self.settled.store(true, Ordering::Relaxed);
    }

    pub fn available(&self) -> bool {
        self.available_at(millis(Instant::now()))
    }

    /// Whether it is available at `now` ([`millis`]).
    fn available_at(&self, now: u64) -> bool {
        self.healthy.load(Ordering::Relaxed) && self.ejected_until.load(Ordering::Relaxed) <= now
    }

    /// Passive ejection: out for a while after a connection failure or a 5xx streak.
    pub fn eject(&self) {
        self.ejected_until.store(millis(Instant::now()) + EJECTION.as_millis() as u64, Ordering::Relaxed);
        self.error_streak.store(0, Ordering::Relaxed);
        tracing::warn!(instance = %self.addr, "instance ejected");
    }

    /// Records an answer's status; a 5xx streak ejects.
    pub fn answered(&self, status: u16) {
        if status >= 500 {
            self.errors.fetch_add(1, Ordering::Relaxed);
            if self.error_streak.fetch_add(1, Ordering::Relaxed) + 1 >= FIVE_XX_STREAK {
                self.eject();
            }
        } else {
            self.error_streak.store(0, Ordering::Relaxed);
        }
    }
}

/// Holds a slot of an instance's outstanding count for the life of a request.
#[derive(Debug)]
pub struct InFlight(pub Arc<Instance>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How a route spreads requests over its available instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    LeastOutstanding,
    RoundRobin,
}

/// A route's balancing: the policy and, for round robin, its position.
#[derive(Debug)]
pub struct Balancer {
    pub balance: Balance,
    cursor: AtomicUsize,
}

impl Balancer {
    pub fn new(balance: Balance) -> Self {
        Self { balance, cursor: AtomicUsize::new(0) }
    }
}

/// An available instance of `instances` at `now`, skipping `avoid` (no allocation): the next
/// in turn for round robin, else the least outstanding of two at random.
pub fn pick(
    instances: &[Arc<Instance>],
    balancer: &Balancer,
    avoid: &[SocketAddr],
    now: Instant,
) -> Option<InFlight> {
    let now = millis(now);
    let candidates = || instances.iter().filter(|i| i.available_at(now) && !avoid.contains(&i.addr));
    let chosen = match candidates().count() {
        0 => return None,
        1 => candidates().next()?,
        n if balancer.balance == Balance::RoundRobin => {
            candidates().nth(balancer.cursor.fetch_add(1, Ordering::Relaxed) % n)?
        }
        n => {
            let mut rng = rand::thread_rng();
            let a = candidates().nth(rng.gen_range(0..n))?;
            let b = candidates().nth(rng.gen_range(0..n))?;
            if b.outstanding.load(Ordering::Relaxed) < a.outstanding.load(Ordering::Relaxed) { b } else { a }
        }
    };
    chosen.outstanding.fetch_add(1, Ordering::Relaxed);
    chosen.requests.fetch_add(1, Ordering::Relaxed);
    Some(InFlight(chosen.clone()))
}
