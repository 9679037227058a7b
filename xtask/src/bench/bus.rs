//! The bus benchmark: publish and handle rates, and publish-to-handler latency with NOTIFY.
//!
//! Peers measured in the same run: a plain `INSERT` of the same event into an ordinary table
//! (what a write costs in this Postgres, without the bus) for the publish rate; the publish
//! rate itself for the handling rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bus::pg::PgBus;
use bus::{Backend, Delivery, Group, Handled, Handler, HandlerError, Publish, Worker, WorkerConfig};
use serde_json::json;
use tokio::sync::Mutex;

use super::{quantile_ms, results_path};

const SINGLE: usize = 3_000;
const BATCHES: usize = 200;
const BATCH: usize = 100;
const LATENCY_SAMPLES: usize = 500;

pub async fn run() -> anyhow::Result<()> {
    super::on_fresh_database(async |url: String| measure(&url).await).await
}

#[derive(Clone, Default)]
struct Probe {
    handled: Arc<AtomicU64>,
    latencies: Arc<Mutex<Vec<Duration>>>,
}

impl Handler for Probe {
    async fn handle(&self, d: &Delivery) -> Result<Handled, HandlerError> {
        if let Some(sent) = d.payload["sent_ns"].as_u64() {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
            self.latencies.lock().await.push(Duration::from_nanos(now.saturating_sub(sent)));
        }
        self.handled.fetch_add(1, Ordering::Relaxed);
        Ok(Handled::Done)
    }
}

async fn measure(url: &str) -> anyhow::Result<()> {
    let db = kit::config::DbConfig {
        url: secrecy::SecretString::from(url.to_string()),
        max_connections: 20,
        connect_timeout: Duration::from_secs(5),
        acquire_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(60),
        migrate_on_start: true,
        role: None,
    };
    bus::migrations().up(&db).await?;
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(20).connect(url).await?;
    let bus = PgBus::new(pool.clone());
    bus.subscribe(&Group::new("bench"), &["bench.event"]).await?;
    sqlx::query("CREATE TABLE public.plain (id uuid PRIMARY KEY, topic text, payload jsonb, at timestamptz DEFAULT now())")
        .execute(&pool)
        .await?;
    let payload = json!({ "user_id": uuid::Uuid::new_v4(), "email": "bench@example.com", "url": "https://example.com/x" });

    eprintln!("bench: {SINGLE} plain inserts and {SINGLE} publishes, one per transaction");
    let started = Instant::now();
    for _ in 0..SINGLE {
        sqlx::query("INSERT INTO public.plain (id, topic, payload) VALUES ($1, 'bench.event', $2)")
            .bind(uuid::Uuid::now_v7())
            .bind(&payload)
            .execute(&pool)
            .await?;
    }
    let plain_per_s = SINGLE as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for _ in 0..SINGLE {
        bus.publish(&Publish::new("bench.event", payload.clone())).await?;
    }
    let publish_per_s = SINGLE as f64 / started.elapsed().as_secs_f64();

    eprintln!("bench: {} publishes in transactions of {BATCH}", BATCHES * BATCH);
    let started = Instant::now();
    for _ in 0..BATCHES {
        let mut tx = pool.begin().await?;
        for _ in 0..BATCH {
            bus::pg::publish(&mut tx, &Publish::new("bench.event", payload.clone())).await?;
        }
        tx.commit().await?;
    }
    let batched_per_s = (BATCHES * BATCH) as f64 / started.elapsed().as_secs_f64();

    let backlog = (SINGLE + BATCHES * BATCH) as u64;
    eprintln!("bench: one worker (concurrency 32) drains {backlog} events");
    let probe = Probe::default();
    let config = WorkerConfig {
        concurrency: 32,
        poll: Duration::from_secs(60),
        ..WorkerConfig::new(Group::new("bench"), &["bench.event"])
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = Worker::new(bus.clone(), probe.clone(), config);
    let mut rx = stop_rx.clone();
    let running = tokio::spawn(worker.run_until(async move {
        let _ = rx.wait_for(|s| *s).await;
    }));
    let started = Instant::now();
    while probe.handled.load(Ordering::Relaxed) < backlog {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let handled_per_s = backlog as f64 / started.elapsed().as_secs_f64();

    eprintln!(
        "bench: {LATENCY_SAMPLES} single publishes, 10 ms apart, to the idle worker (poll 60 s: only NOTIFY wakes it)"
    );
    for _ in 0..LATENCY_SAMPLES {
        let sent_ns = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
        bus.publish(&Publish::new("bench.event", json!({ "sent_ns": sent_ns }))).await?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while probe.handled.load(Ordering::Relaxed) < backlog + LATENCY_SAMPLES as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = stop_tx.send(true);
    running.await??;
    let mut latencies = probe.latencies.lock().await.clone();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM bus.messages").fetch_one(&pool).await?;

    let report = json!({
        "plain_insert_per_s": plain_per_s,
        "publish_per_s": publish_per_s,
        "publish_vs_plain_insert": publish_per_s / plain_per_s,
        "publish_batched_per_s": batched_per_s,
        "handled_per_s": handled_per_s,
        "handled_vs_publish_batched": handled_per_s / batched_per_s,
        "latency_p50_ms": quantile_ms(&mut latencies, 0.5),
        "latency_p99_ms": quantile_ms(&mut latencies, 0.99),
        "messages_left_after_drain": left,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    let path = results_path("bus");
    std::fs::create_dir_all(path.parent().unwrap_or(std::path::Path::new(".")))?;
    std::fs::write(&path, serde_json::to_vec_pretty(&report)?)?;
    eprintln!("bench: written to {}", path.display());
    Ok(())
}
