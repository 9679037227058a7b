//! The JetStream backend beside plain JetStream: the same number of events published (batches
//! of 100, acknowledgements awaited per batch) and consumed (one group, acknowledged one by
//! one), first apart and then at once, on the same NATS server (NATS_URL, or a throwaway one).
//! The plain peer has none of the bus's promises (no fencing, no dead letters, no per-claim
//! leases); the figure is what they cost.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use bus::nats::JsBus;
use bus::{Backend, Group, Publish, Worker, WorkerConfig};
use futures_util::StreamExt as _;
use serde_json::json;

use super::bus::Probe;

/// Events per run.
const N: usize = 20_000;
const BATCH: usize = 100;

pub async fn run() -> anyhow::Result<()> {
    let server;
    let url = match std::env::var("NATS_URL") {
        Ok(url) => url,
        Err(_) => {
            server = testkit::nats::Server::start().map_err(anyhow::Error::msg)?;
            server.url()
        }
    };
    let (plain_publish, plain_consume, plain_both) = plain(&url).await?;
    let (bus_publish, bus_drain, bus_both) = through_the_bus(&url).await?;
    let report = json!({
        "events": N,
        "plain_publish_per_s": plain_publish,
        "plain_consume_per_s": plain_consume,
        "plain_end_to_end_per_s": plain_both,
        "bus_publish_per_s": bus_publish,
        "bus_drain_per_s": bus_drain,
        "bus_end_to_end_per_s": bus_both,
        "publish_vs_plain": bus_publish / plain_publish,
        "drain_vs_plain": bus_drain / plain_consume,
        "end_to_end_vs_plain": bus_both / plain_both,
    });
    super::publish_report("bus-nats", &report)?;
    Ok(())
}

fn body(n: usize) -> Vec<u8> {
    json!({ "n": n, "email": "bench@example.com", "url": "https://example.com/x" }).to_string().into_bytes()
}

/// Plain async-nats: publish, consume, then both at once.
async fn plain(url: &str) -> anyhow::Result<(f64, f64, f64)> {
    let client = async_nats::connect(url).await?;
    let js = jetstream::new(client);
    let name = format!("PLAIN_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let subject = format!("{}.event", name.to_ascii_lowercase());
    let stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            ..Default::default()
        })
        .await?;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("bench".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            max_ack_pending: -1,
            ..Default::default()
        })
        .await?;
    let publish = async |n: usize| -> anyhow::Result<()> {
        for start in (0..n).step_by(BATCH) {
            let mut acks = Vec::with_capacity(BATCH);
            for i in start..(start + BATCH).min(n) {
                acks.push(js.publish(subject.clone(), body(i).into()).await?);
            }
            for ack in acks {
                ack.await?;
            }
        }
        Ok(())
    };
    let consume = async |n: usize| -> anyhow::Result<()> {
        let mut messages = consumer.messages().await?;
        let mut seen = 0;
        while seen < n {
            let Some(message) = messages.next().await else { anyhow::bail!("the consumer ended") };
            message.map_err(|e| anyhow::anyhow!("{e}"))?.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            seen += 1;
        }
        Ok(())
    };
    eprintln!("bench: plain JetStream: {N} published in batches of {BATCH}");
    let started = Instant::now();
    publish(N).await?;
    let publish_per_s = N as f64 / started.elapsed().as_secs_f64();
    eprintln!("bench: plain JetStream: one pull consumer drains them");
    let started = Instant::now();
    consume(N).await?;
    let consume_per_s = N as f64 / started.elapsed().as_secs_f64();
    eprintln!("bench: plain JetStream: both at once");
    let started = Instant::now();
    let (published, consumed) = tokio::join!(publish(N), consume(N));
    published?;
    consumed?;
    let both_per_s = N as f64 / started.elapsed().as_secs_f64();
    js.delete_stream(&name).await?;
    Ok((publish_per_s, consume_per_s, both_per_s))
}

/// The bus's JetStream backend: publish_many, a worker draining, then both at once.
async fn through_the_bus(url: &str) -> anyhow::Result<(f64, f64, f64)> {
    let namespace = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let bus = JsBus::connect(url, &namespace).await?;
    let group = Group::new("bench");
    bus.subscribe(&group, &["bench.event"]).await?;
    let publish = async |n: usize| -> anyhow::Result<()> {
        for start in (0..n).step_by(BATCH) {
            let batch: Vec<Publish> = (start..(start + BATCH).min(n))
                .map(|i| Publish::new("bench.event", json!({ "n": i, "email": "bench@example.com" })))
                .collect();
            bus.publish_many(&batch).await?;
        }
        Ok(())
    };
    eprintln!("bench: JetStream bus: {N} published in batches of {BATCH}");
    let started = Instant::now();
    publish(N).await?;
    let publish_per_s = N as f64 / started.elapsed().as_secs_f64();

    let probe = Probe::default();
    let config = WorkerConfig {
        concurrency: 512,
        poll: Duration::from_secs(60),
        ..WorkerConfig::new(group, &["bench.event"])
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut rx = stop_rx.clone();
    let running = tokio::spawn(Worker::new(bus.clone(), probe.clone(), config).run_until(async move {
        let _ = rx.wait_for(|s| *s).await;
    }));
    eprintln!("bench: JetStream bus: one worker (concurrency 512) drains them");
    let started = Instant::now();
    probe.until(N as u64).await;
    let drain_per_s = N as f64 / started.elapsed().as_secs_f64();
    eprintln!("bench: JetStream bus: both at once");
    let started = Instant::now();
    publish(N).await?;
    probe.until(2 * N as u64).await;
    let both_per_s = N as f64 / started.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    running.await??;
    Ok((publish_per_s, drain_per_s, both_per_s))
}
