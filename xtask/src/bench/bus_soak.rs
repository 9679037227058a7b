//! The bus soak: ten minutes (`SLIPWAY_BENCH_SOAK_SECS`) of batched publishing and one worker
//! handling, the backlog held near 20,000; throughput minute by minute, the last against the
//! first, with the hot table's dead rows beside it — a Postgres queue slows as dead tuples pile
//! up unless they are vacuumed away.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bus::pg::PgBus;
use bus::{Backend, Group, Publish, Worker, WorkerConfig};
use serde_json::json;

use super::bus::{Probe, bus_on};

/// The most published but not yet handled before the producer waits.
const BACKLOG: u64 = 20_000;

pub async fn run() -> anyhow::Result<()> {
    super::on_fresh_database(async |url: String| measure(&url).await).await
}

async fn measure(url: &str) -> anyhow::Result<()> {
    let secs: u64 = std::env::var("SLIPWAY_BENCH_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    let interval = Duration::from_secs((secs / 10).clamp(1, 60));
    let (pool, bus) = bus_on(url).await?;
    let probe = Probe::default();
    let config = WorkerConfig {
        concurrency: 512,
        poll: Duration::from_secs(60),
        ..WorkerConfig::new(Group::new("bench"), &["bench.event"])
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut rx = stop_rx.clone();
    let running = tokio::spawn(Worker::new(bus.clone(), probe.clone(), config).run_until(async move {
        let _ = rx.wait_for(|s| *s).await;
    }));
    let done = Arc::new(AtomicBool::new(false));
    let producer = tokio::spawn(produce(bus.clone(), probe.clone(), done.clone()));

    eprintln!("bench: soak for {secs} s, a sample every {interval:?}");
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut last = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(interval).await;
        let handled = probe.handled.load(Ordering::Relaxed);
        let (dead, vacuums): (i64, i64) = sqlx::query_as(
            "SELECT n_dead_tup, autovacuum_count FROM pg_stat_user_tables \
             WHERE schemaname = 'bus' AND relname = 'deliveries'",
        )
        .fetch_one(&pool)
        .await?;
        let per_s = (handled - last) as f64 / interval.as_secs_f64();
        eprintln!(
            "bench: {:>5.0} s: {per_s:>8.0}/s handled, {dead} dead rows, {vacuums} autovacuums",
            started.elapsed().as_secs_f64()
        );
        samples.push(json!({ "at_s": started.elapsed().as_secs(), "handled_per_s": per_s, "dead_rows": dead, "autovacuums": vacuums }));
        last = handled;
    }
    done.store(true, Ordering::Relaxed);
    producer.await??;
    let _ = stop_tx.send(true);
    running.await??;
    let rate =
        |s: Option<&serde_json::Value>| s.and_then(|s| s["handled_per_s"].as_f64()).unwrap_or(f64::NAN);
    let (first, last) = (rate(samples.first()), rate(samples.last()));
    let report = json!({
        "seconds": secs,
        "first_interval_per_s": first,
        "last_interval_per_s": last,
        "last_vs_first": last / first,
        "samples": samples,
    });
    super::publish_report("bus-soak", &report)?;
    Ok(())
}

/// Publishes batches of 100 as fast as the worker keeps up, until `done`.
async fn produce(bus: PgBus, probe: Probe, done: Arc<AtomicBool>) -> anyhow::Result<()> {
    let mut published = 0u64;
    while !done.load(Ordering::Relaxed) {
        if published.saturating_sub(probe.handled.load(Ordering::Relaxed)) > BACKLOG {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        let batch: Vec<Publish> = (0..100)
            .map(|n| Publish::new("bench.event", json!({ "n": n, "email": "bench@example.com" })))
            .collect();
        bus.publish_many(&batch).await?;
        published += 100;
    }
    Ok(())
}
