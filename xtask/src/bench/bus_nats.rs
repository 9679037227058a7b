//! The JetStream backend beside plain JetStream: the same number of events published (batches
//! of 100, acknowledgements awaited per batch) and consumed (one group, acknowledged one by
//! one), first apart and then at once, on the same NATS server (NATS_URL, or a throwaway one).
//! A round measures plain JetStream with message ids (de-duplicated, as the bus's publishes
//! are), plain JetStream, then the bus; rounds alternate so that all see the same machine, and
//! the report gives each ratio's median over the rounds beside every round's.
//! The plain peer has none of the bus's promises (no fencing, no dead letters, no per-claim
//! leases); the figure is what they cost. With a throwaway server, each phase also reports
//! the CPU time the server and this process spent per event (from `/proc`), which says where
//! the bus's extra cost lies.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use bus::nats::JsBus;
use bus::{Backend, Group, Publish, Worker, WorkerConfig};
use futures_util::StreamExt as _;
use serde_json::json;

use super::bus::Probe;

/// Events per phase.
const N: usize = 20_000;
const BATCH: usize = 100;
/// Rounds of the peers then the bus: one round's phases take a few seconds, too short to read
/// a ratio from one of them (single rounds here ranged 0.51-0.83x end to end).
const ROUNDS: usize = 7;

pub async fn run() -> anyhow::Result<()> {
    let server;
    let (url, meter) = match std::env::var("NATS_URL") {
        Ok(url) => (url, Meter { server: None }),
        Err(_) => {
            server = testkit::nats::Server::start().map_err(anyhow::Error::msg)?;
            (server.url(), Meter { server: server.pid() })
        }
    };
    let mut rounds = Vec::with_capacity(ROUNDS);
    for round in 1..=ROUNDS {
        eprintln!("bench: round {round} of {ROUNDS}");
        let plain_ids = plain(&url, &meter, Ids::Sent).await?;
        let plain = plain(&url, &meter, Ids::None).await?;
        let bus = through_the_bus(&url, &meter).await?;
        rounds.push(Round { plain, plain_ids, bus });
    }
    let mut report = json!({
        "events": N,
        "rounds": rounds.iter().map(Round::json).collect::<Vec<_>>(),
    });
    super::median_ratios(&mut report, &rounds.iter().map(Round::ratios).collect::<Vec<_>>());
    super::publish_report("bus-nats", &report)?;
    Ok(())
}

/// One round: plain JetStream's publish, consume and both at once (with message ids, then
/// without), then the bus's publish, drain and both at once.
struct Round {
    plain: [Phase; 3],
    plain_ids: [Phase; 3],
    bus: [Phase; 3],
}

/// Whether plain JetStream's publishes carry a message id, as the bus's do: JetStream then
/// de-duplicates them, which is part of what the bus's exactly-once publishing costs.
#[derive(Clone, Copy, PartialEq)]
enum Ids {
    None,
    Sent,
}

impl Round {
    fn json(&self) -> serde_json::Value {
        let [plain_publish, plain_consume, plain_both] = &self.plain;
        let [ids_publish, ids_consume, ids_both] = &self.plain_ids;
        let [bus_publish, bus_drain, bus_both] = &self.bus;
        json!({
            "plain_publish": plain_publish.json(),
            "plain_consume": plain_consume.json(),
            "plain_end_to_end": plain_both.json(),
            "plain_with_ids_publish": ids_publish.json(),
            "plain_with_ids_consume": ids_consume.json(),
            "plain_with_ids_end_to_end": ids_both.json(),
            "bus_publish": bus_publish.json(),
            "bus_drain": bus_drain.json(),
            "bus_end_to_end": bus_both.json(),
            "ratios": self.ratios().into_iter().map(|(name, r)| (name.to_string(), json!(r))).collect::<serde_json::Map<_, _>>(),
        })
    }

    /// The bus's rate over each peer's, phase by phase, named as the report names them.
    fn ratios(&self) -> Vec<(&'static str, f64)> {
        let names = [
            ("publish_vs_plain", "publish_vs_plain_with_ids"),
            ("drain_vs_plain", "drain_vs_plain_with_ids"),
            ("end_to_end_vs_plain", "end_to_end_vs_plain_with_ids"),
        ];
        let mut ratios = Vec::new();
        for (phase, (plain, with_ids)) in names.into_iter().enumerate() {
            let bus = self.bus[phase].per_s;
            ratios.push((plain, bus / self.plain[phase].per_s));
            ratios.push((with_ids, bus / self.plain_ids[phase].per_s));
        }
        ratios
    }
}

/// Where CPU time goes: the throwaway server's (if this bench started it) and this process's.
struct Meter {
    server: Option<u32>,
}

/// One phase's rate, and CPU microseconds per event spent by the server and by this process.
struct Phase {
    per_s: f64,
    server_us: Option<f64>,
    client_us: f64,
}

impl Phase {
    fn json(&self) -> serde_json::Value {
        json!({
            "per_s": self.per_s,
            "server_cpu_us_per_event": self.server_us,
            "client_cpu_us_per_event": self.client_us,
        })
    }
}

impl Meter {
    /// Runs `phase` (which handles `N` events) and measures it.
    async fn phase(&self, phase: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<Phase> {
        let (server, client) = (self.server.map(cpu_seconds), cpu_seconds("self"));
        let started = Instant::now();
        phase.await?;
        let elapsed = started.elapsed().as_secs_f64();
        let per_event = |before: f64, after: f64| (after - before) * 1e6 / N as f64;
        Ok(Phase {
            per_s: N as f64 / elapsed,
            server_us: self
                .server
                .map(cpu_seconds)
                .zip(server)
                .map(|(after, before)| per_event(before, after)),
            client_us: per_event(client, cpu_seconds("self")),
        })
    }
}

/// User plus system CPU time of a process so far (`/proc/<pid>/stat`, in clock ticks of
/// 1/100 s); 0 if it cannot be read.
fn cpu_seconds(pid: impl std::fmt::Display) -> f64 {
    let (user, system) =
        super::cpu_times(&super::proc_stat(std::path::Path::new(&format!("/proc/{pid}/stat"))));
    user + system
}

fn body(n: usize) -> Vec<u8> {
    json!({ "n": n, "email": "bench@example.com", "url": "https://example.com/x" }).to_string().into_bytes()
}

/// Plain async-nats: publish, consume, then both at once.
async fn plain(url: &str, meter: &Meter, ids: Ids) -> anyhow::Result<[Phase; 3]> {
    let client = async_nats::connect(url).await?;
    let js = jetstream::new(client);
    let name = format!("PLAIN_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let subject = format!("{}.event", name.to_ascii_lowercase());
    let stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            duplicate_window: Duration::from_secs(120),
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
                let ack = if ids == Ids::Sent {
                    let mut headers = async_nats::HeaderMap::new();
                    let id = uuid::Uuid::now_v7();
                    headers.insert(
                        async_nats::header::NATS_MESSAGE_ID,
                        id.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()) as &str,
                    );
                    js.publish_with_headers(subject.clone(), headers, body(i).into()).await?
                } else {
                    js.publish(subject.clone(), body(i).into()).await?
                };
                acks.push(ack);
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
    let with = if ids == Ids::Sent { " with message ids" } else { "" };
    eprintln!("bench: plain JetStream{with}: {N} published in batches of {BATCH}");
    let published = meter.phase(publish(N)).await?;
    eprintln!("bench: plain JetStream: one pull consumer drains them");
    let consumed = meter.phase(consume(N)).await?;
    eprintln!("bench: plain JetStream: both at once");
    let both = meter
        .phase(async {
            let (published, consumed) = tokio::join!(publish(N), consume(N));
            published.and(consumed)
        })
        .await?;
    js.delete_stream(&name).await?;
    Ok([published, consumed, both])
}

/// The bus's JetStream backend: publish_many, a worker draining, then both at once.
async fn through_the_bus(url: &str, meter: &Meter) -> anyhow::Result<[Phase; 3]> {
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
    let published = meter.phase(publish(N)).await?;

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
    let drained = meter
        .phase(async {
            probe.until(N as u64).await;
            Ok(())
        })
        .await?;
    eprintln!("bench: JetStream bus: both at once");
    let both = meter
        .phase(async {
            publish(N).await?;
            probe.until(2 * N as u64).await;
            Ok(())
        })
        .await?;
    let _ = stop_tx.send(true);
    running.await??;
    // Each round's stream and buckets go, so that the next round starts as empty as this one.
    let js = jetstream::new(async_nats::connect(url).await?);
    let name = format!("SLIPWAY_{}", namespace.to_ascii_uppercase());
    for stream in [format!("KV_{name}_LEASES"), format!("KV_{name}_DEAD"), name] {
        js.delete_stream(&stream).await?;
    }
    Ok([published, drained, both])
}
