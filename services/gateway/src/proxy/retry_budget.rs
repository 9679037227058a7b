//! The retry budget: retries after a 502/503 answer are allowed while they stay under a fifth
//! of all requests (plus a few to start with), so a failing fleet is not hit with a retry
//! storm. Retries after a failed connection are not counted against it: nothing reached the
//! instance.

use std::sync::atomic::{AtomicU64, Ordering};

use super::Metrics;

#[derive(Debug, Default)]
pub struct RetryBudget {
    spent: AtomicU64,
}

impl RetryBudget {
    const RATIO: u64 = 5;
    const MIN: u64 = 10;

    pub fn allow(&self, metrics: &Metrics) -> bool {
        let requests = metrics.requests.load(Ordering::Relaxed);
        let allowed = requests / Self::RATIO + Self::MIN;
        self.spent
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| (s < allowed).then_some(s + 1))
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_budget_allows_a_few_then_a_fifth_of_requests() {
        let (budget, metrics) = (RetryBudget::default(), Metrics::default());
        assert_eq!((0..20).filter(|_| budget.allow(&metrics)).count(), 10, "a few to start with");
        metrics.requests.store(100, Ordering::Relaxed);
        assert_eq!((0..40).filter(|_| budget.allow(&metrics)).count(), 20, "then 20% of requests");
    }
}
