//! The bus benchmark: batched publishing, one group's worker draining, both at once end to
//! end, and publish-to-handler latency at half that rate.
//!
//! The peers, measured in the same run on the same database: a raw SQL loop that claims and
//! deletes the same number of rows from a plain table in batches of 100 with `FOR UPDATE SKIP
//! LOCKED`, on two connections — a queue with none of the bus's guarantees (no fan-out, no
//! leases, no retries), the ceiling this Postgres sets; the same end to end with a publisher
//! and a lease (insert, leased claim, fenced delete: the bus's three round trips and nothing
//! else of it); and graphile-worker (npm, in tools/)
//! draining the same number of no-op jobs in its default mode and with its local queue and
//! batched completions (`tools/graphile-bench.mjs`).
//!
//! The raw peers and the bus alternate in rounds, and the report gives each figure's and each
//! ratio's median beside every round's; graphile-worker (slow in its default mode) and the
//! latency run go once, after the rounds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bus::pg::PgBus;
use bus::{Backend, Delivery, Group, Handled, Handler, HandlerError, Publish, Worker, WorkerConfig};
use serde_json::json;
use tokio::sync::Mutex;

use super::{median, median_ratios, quantile_ms};

/// Messages per throughput run.
const N: usize = 50_000;
/// Messages per publish statement, and rows per raw claim.
const BATCH: usize = 100;
/// One publish per transaction, for the single-publish rate.
const SINGLE: usize = 2_000;
/// Rounds of the peers then the bus: the machine's speed drifts over minutes (the raw peers
/// alone ranged 1.3x between single runs), so figures are medians of rounds that alternate.
const ROUNDS: usize = 5;
/// How long the latency run publishes.
const LATENCY_RUN: Duration = Duration::from_secs(5);

pub async fn run() -> anyhow::Result<()> {
    super::on_fresh_database(async |url: String| measure(&url).await).await
}

/// A handler that counts, and records the latency of events that carry `sent_ns`.
#[derive(Clone, Default)]
pub(super) struct Probe {
    pub(super) handled: Arc<AtomicU64>,
    latencies: Arc<Mutex<Vec<Duration>>>,
}

impl Handler for Probe {
    async fn handle(&self, d: &Delivery) -> Result<Handled, HandlerError> {
        if let Some(sent) = d.payload["sent_ns"].as_u64() {
            self.latencies.lock().await.push(Duration::from_nanos(now_ns().saturating_sub(sent)));
        }
        self.handled.fetch_add(1, Ordering::Relaxed);
        Ok(Handled::Done)
    }
}

impl Probe {
    pub(super) async fn until(&self, count: u64) {
        while self.handled.load(Ordering::Relaxed) < count {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0))
}

fn event(n: usize) -> Publish {
    Publish::new(
        "bench.event",
        json!({ "n": n, "email": "bench@example.com", "url": "https://example.com/x" }),
    )
}

/// A migrated bus on `url`, with the group `bench` subscribed to `bench.event`.
pub(super) async fn bus_on(url: &str) -> anyhow::Result<(sqlx::PgPool, PgBus)> {
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
    Ok((pool, bus))
}

/// One round's figures, per second: the two raw peers, then the bus publishing, draining and
/// both at once.
struct Round {
    raw: f64,
    leased: f64,
    publish: f64,
    drain: f64,
    end_to_end: f64,
}

impl Round {
    /// The bus against the raw peers measured in the same round.
    fn ratios(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("end_to_end_vs_raw", self.end_to_end / self.raw),
            ("end_to_end_vs_raw_with_publish_and_lease", self.end_to_end / self.leased),
        ]
    }

    fn json(&self) -> serde_json::Value {
        let mut round = json!({
            "raw_skip_locked_claim_delete_per_s": self.raw,
            "raw_publish_lease_delete_end_to_end_per_s": self.leased,
            "publish_batched_per_s": self.publish,
            "drain_per_s": self.drain,
            "end_to_end_per_s": self.end_to_end,
        });
        for (name, ratio) in self.ratios() {
            round[name] = json!(ratio);
        }
        round
    }
}

/// A worker of the group `bench` handling into `probe` until the returned sender says stop.
fn start_worker(
    bus: &PgBus,
    probe: &Probe,
) -> (tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<Result<(), bus::BusError>>) {
    let config = WorkerConfig {
        concurrency: 512,
        poll: Duration::from_secs(60),
        ..WorkerConfig::new(Group::new("bench"), &["bench.event"])
    };
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(Worker::new(bus.clone(), probe.clone(), config).run_until(async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    (stop_tx, running)
}

/// The peers then the bus, `N` messages each: publishing alone, one worker (concurrency 512)
/// draining what was published, then both at once. Each round starts with the bus's table
/// vacuumed, as the raw peers start with new tables: what dead rows cost over time is `bench
/// bus-soak`'s to measure.
async fn round(pool: &sqlx::PgPool, bus: &PgBus) -> anyhow::Result<Round> {
    sqlx::query("VACUUM ANALYZE bus.deliveries").execute(pool).await?;
    let raw = raw_loop(pool).await?;
    let leased = raw_leased_loop(pool).await?;

    eprintln!("bench: {N} publishes in batches of {BATCH} (bus.publish_many)");
    let started = Instant::now();
    publish_all(bus, N).await?;
    let publish = N as f64 / started.elapsed().as_secs_f64();

    let probe = Probe::default();
    let (stop, running) = start_worker(bus, &probe);
    eprintln!("bench: one worker (concurrency 512) drains the {N} published");
    let started = Instant::now();
    probe.until(N as u64).await;
    let drain = N as f64 / started.elapsed().as_secs_f64();

    eprintln!("bench: end to end: {N} published in batches while the worker handles them");
    let started = Instant::now();
    publish_all(bus, N).await?;
    probe.until(2 * N as u64).await;
    let end_to_end = N as f64 / started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    running.await??;
    Ok(Round { raw, leased, publish, drain, end_to_end })
}

async fn measure(url: &str) -> anyhow::Result<()> {
    let (pool, bus) = bus_on(url).await?;

    eprintln!("bench: {SINGLE} publishes, one per transaction");
    let started = Instant::now();
    for n in 0..SINGLE {
        bus.publish(&event(n)).await?;
    }
    let single_per_s = SINGLE as f64 / started.elapsed().as_secs_f64();
    let probe = Probe::default();
    let (stop, running) = start_worker(&bus, &probe);
    probe.until(SINGLE as u64).await;
    let _ = stop.send(true);
    running.await??;

    let mut rounds = Vec::with_capacity(ROUNDS);
    for n in 1..=ROUNDS {
        eprintln!("bench: round {n} of {ROUNDS}");
        rounds.push(round(&pool, &bus).await?);
    }
    let median_of = |f: fn(&Round) -> f64| median(rounds.iter().map(f));
    let end_to_end_per_s = median_of(|r| r.end_to_end);
    let drain_per_s = median_of(|r| r.drain);

    // From a vacuumed table too, as each round: after five rounds a server that vacuums only
    // every minute (the default) holds half a million dead rows.
    sqlx::query("VACUUM ANALYZE bus.deliveries").execute(&pool).await?;
    let probe = Probe::default();
    let (stop, running) = start_worker(&bus, &probe);
    let rate = end_to_end_per_s / 2.0;
    eprintln!("bench: latency at half the end-to-end rate ({rate:.0}/s, batches of 10) for {LATENCY_RUN:?}");
    let every = Duration::from_secs_f64(10.0 / rate);
    let mut ticker = tokio::time::interval(every);
    let started = Instant::now();
    let mut sent = 0usize;
    while started.elapsed() < LATENCY_RUN {
        ticker.tick().await;
        let batch: Vec<Publish> =
            (0..10).map(|_| Publish::new("bench.event", json!({ "sent_ns": now_ns() }))).collect();
        bus.publish_many(&batch).await?;
        sent += 10;
    }
    probe.until(sent as u64).await;
    let _ = stop.send(true);
    running.await??;
    let mut latencies = probe.latencies.lock().await.clone();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM bus.events").fetch_one(&pool).await?;

    let graphile_default = graphile(url, "default").await?;
    let graphile_local = graphile(url, "local").await?;
    let graphile_best = graphile_default.max(graphile_local);

    let mut report = json!({
        "rounds": rounds.iter().map(Round::json).collect::<Vec<_>>(),
        "raw_skip_locked_claim_delete_per_s": median_of(|r| r.raw),
        "raw_publish_lease_delete_end_to_end_per_s": median_of(|r| r.leased),
        "publish_single_per_s": single_per_s,
        "publish_batched_per_s": median_of(|r| r.publish),
        "drain_per_s": drain_per_s,
        "end_to_end_per_s": end_to_end_per_s,
        "graphile_worker_default_per_s": graphile_default,
        "graphile_worker_local_queue_per_s": graphile_local,
        // graphile-worker runs once, after the rounds: against the bus's medians.
        "end_to_end_vs_graphile_best": end_to_end_per_s / graphile_best,
        // graphile-worker's figures drain jobs inserted beforehand: the like-for-like ratio.
        "drain_vs_graphile_best": drain_per_s / graphile_best,
        "latency_rate_per_s": rate,
        "latency_p50_ms": quantile_ms(&mut latencies, 0.5),
        "latency_p99_ms": quantile_ms(&mut latencies, 0.99),
        "messages_left_after_drain": left,
    });
    median_ratios(&mut report, &rounds.iter().map(Round::ratios).collect::<Vec<_>>());
    super::publish_report("bus", &report)?;
    Ok(())
}

/// Publishes `n` events in batches of `BATCH`, one statement each.
async fn publish_all(bus: &PgBus, n: usize) -> anyhow::Result<()> {
    for start in (0..n).step_by(BATCH) {
        let batch: Vec<Publish> = (start..(start + BATCH).min(n)).map(event).collect();
        bus.publish_many(&batch).await?;
    }
    Ok(())
}

/// The peer: `N` rows in a plain table, claimed and deleted `BATCH` at a time with `FOR
/// UPDATE SKIP LOCKED` by two loops at once; rows per second.
async fn raw_loop(pool: &sqlx::PgPool) -> anyhow::Result<f64> {
    sqlx::query("DROP TABLE IF EXISTS public.raw_queue").execute(pool).await?;
    sqlx::query("CREATE TABLE public.raw_queue (id bigserial PRIMARY KEY, payload jsonb NOT NULL)")
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO public.raw_queue (payload) SELECT jsonb_build_object('n', n, 'email', 'bench@example.com', \
         'url', 'https://example.com/x') FROM generate_series(1, $1) AS n",
    )
    .bind(i32::try_from(N)?)
    .execute(pool)
    .await?;
    sqlx::query("VACUUM ANALYZE public.raw_queue").execute(pool).await?;
    eprintln!("bench: peer: {N} rows claimed and deleted {BATCH} at a time with SKIP LOCKED, two loops");
    let started = Instant::now();
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..2 {
        let pool = pool.clone();
        loops.spawn(async move {
            loop {
                let taken = sqlx::query(
                    "WITH picked AS (SELECT id FROM public.raw_queue ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) \
                     DELETE FROM public.raw_queue q USING picked WHERE q.id = picked.id RETURNING q.payload",
                )
                .bind(i64::try_from(BATCH).unwrap_or(100))
                .fetch_all(&pool)
                .await?;
                if taken.is_empty() {
                    return Ok::<_, sqlx::Error>(());
                }
            }
        });
    }
    while let Some(done) = loops.join_next().await {
        done??;
    }
    Ok(N as f64 / started.elapsed().as_secs_f64())
}

/// The like-for-like peer: the least a queue with the bus's round trips does. One loop
/// publishes `N` rows in batches of `BATCH` (an insert each) while two loops claim a batch
/// under a lease (an update with `SKIP LOCKED`, an attempt counted) and delete it where the
/// attempt is still theirs: three statements per batch, as the bus's publish, claim and
/// completion, with none of its fan-out, dedupe, retries, delays or dead letters; rows per
/// second end to end.
async fn raw_leased_loop(pool: &sqlx::PgPool) -> anyhow::Result<f64> {
    sqlx::query("DROP TABLE IF EXISTS public.raw_leased").execute(pool).await?;
    sqlx::query(
        "CREATE TABLE public.raw_leased (id bigserial PRIMARY KEY, payload jsonb NOT NULL,          lease_until timestamptz, attempt integer NOT NULL DEFAULT 0)",
    )
    .execute(pool)
    .await?;
    eprintln!(
        "bench: peer: {N} rows published {BATCH} at a time while two loops lease and delete them (raw SQL)"
    );
    let deleted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut loops = tokio::task::JoinSet::new();
    let publisher = pool.clone();
    loops.spawn(async move {
        for start in (0..N).step_by(BATCH) {
            let n: Vec<i64> = (start..(start + BATCH).min(N)).filter_map(|n| i64::try_from(n).ok()).collect();
            sqlx::query(
                "INSERT INTO public.raw_leased (payload) SELECT jsonb_build_object('n', n, 'email',                  'bench@example.com') FROM unnest($1::bigint[]) AS n",
            )
            .bind(n)
            .execute(&publisher)
            .await?;
        }
        Ok::<_, sqlx::Error>(())
    });
    for _ in 0..2 {
        let (pool, deleted) = (pool.clone(), deleted.clone());
        loops.spawn(async move {
            while deleted.load(Ordering::Relaxed) < N as u64 {
                let claimed: Vec<(i64, i32, serde_json::Value)> = sqlx::query_as(
                    "UPDATE public.raw_leased q SET lease_until = now() + interval '30 seconds',                      attempt = q.attempt + 1 FROM (SELECT id FROM public.raw_leased                      WHERE lease_until IS NULL OR lease_until < now() ORDER BY id LIMIT $1                      FOR UPDATE SKIP LOCKED) picked WHERE q.id = picked.id                      RETURNING q.id, q.attempt, q.payload",
                )
                .bind(i64::try_from(BATCH).unwrap_or(100))
                .fetch_all(&pool)
                .await?;
                if claimed.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                let (ids, attempts): (Vec<i64>, Vec<i32>) = claimed.into_iter().map(|(id, a, _)| (id, a)).unzip();
                let done = sqlx::query(
                    "DELETE FROM public.raw_leased q USING unnest($1::bigint[], $2::int[]) AS c (id, attempt)                      WHERE q.id = c.id AND q.attempt = c.attempt",
                )
                .bind(ids)
                .bind(attempts)
                .execute(&pool)
                .await?;
                deleted.fetch_add(done.rows_affected(), Ordering::Relaxed);
            }
            Ok(())
        });
    }
    while let Some(done) = loops.join_next().await {
        done??;
    }
    Ok(N as f64 / started.elapsed().as_secs_f64())
}

/// graphile-worker 0.18 draining `N` no-op jobs in `mode` (`default` or `local`); jobs per second.
async fn graphile(url: &str, mode: &str) -> anyhow::Result<f64> {
    let tools = crate::workflows::tools();
    anyhow::ensure!(
        tools.join("node_modules/graphile-worker").is_dir(),
        "graphile-worker is not installed: run `npm ci --prefix tools` (cargo xtask setup does)"
    );
    eprintln!("bench: peer: graphile-worker ({mode} mode) drains {N} no-op jobs");
    let out = tokio::process::Command::new("node")
        .arg(tools.join("graphile-bench.mjs"))
        .args([url, &N.to_string(), mode])
        .output()
        .await
        .map_err(|e| anyhow::anyhow!("cannot run node ({e}): install Node.js (cargo xtask setup does)"))?;
    anyhow::ensure!(
        out.status.success(),
        "graphile-bench.mjs {mode}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    line["per_s"].as_f64().ok_or_else(|| anyhow::anyhow!("graphile-bench.mjs printed no rate: {line}"))
}
