//! A steady load for deploy tests and benchmarks: a few clients asking URLs in turn until
//! stopped, counting what was answered, answered with an error, and not answered at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What the clients saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Answered 200.
    pub answered: u64,
    /// Answered with anything else.
    pub errors: u64,
    /// Not answered: the connection failed or was cut.
    pub dropped: u64,
}

impl Counts {
    /// Requests that were not answered 200.
    pub fn failed(&self) -> u64 {
        self.errors + self.dropped
    }
}

/// Running clients; [`Load::stop`] ends them and sums what they saw.
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Counts>>,
}

impl Load {
    /// `clients` clients, client `i` asking `urls[i % urls.len()]` every 20 ms (10 s timeout).
    pub fn start(urls: &[String], clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..clients)
            .map(|i| {
                let (stop, url) = (stop.clone(), urls[i % urls.len()].clone());
                tokio::spawn(async move {
                    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build();
                    let Ok(http) = http else { return Counts::default() };
                    let mut counts = Counts::default();
                    while !stop.load(Ordering::Relaxed) {
                        match http.get(&url).send().await {
                            Ok(res) if res.status() == 200 => counts.answered += 1,
                            Ok(res) => {
                                eprintln!("load: {url} answered {}", res.status());
                                counts.errors += 1;
                            }
                            Err(error) => {
                                eprintln!("load: {url}: {error}");
                                counts.dropped += 1;
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    counts
                })
            })
            .collect();
        Self { stop, tasks }
    }

    /// Stops every client and sums what they saw.
    pub async fn stop(self) -> Counts {
        self.stop.store(true, Ordering::Relaxed);
        let mut sum = Counts::default();
        for task in self.tasks {
            let c = task.await.unwrap_or_default();
            sum = Counts {
                answered: sum.answered + c.answered,
                errors: sum.errors + c.errors,
                dropped: sum.dropped + c.dropped,
            };
        }
        sum
    }
}
