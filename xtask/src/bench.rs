//! `cargo xtask bench <target>`: measurements, each beside a peer measured in the same run.

mod auth;
mod backup;
mod bus;
mod bus_nats;
mod bus_soak;
mod deploy;
mod gateway;
mod startup;

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Target {
    /// Logins/s against the argon2 ceiling, refreshes/s, /me latency under a login flood.
    Auth,
    /// Batched publish, drain and end-to-end rates and latency, beside a raw SKIP LOCKED loop,
    /// the same with a publisher and a lease (medians of five rounds), and graphile-worker.
    Bus,
    /// The JetStream backend's publish, drain and end-to-end rates beside plain async-nats
    /// JetStream publish and consume, with and without message ids, on the same server
    /// (NATS_URL, or a throwaway one); medians of seven rounds.
    BusNats,
    /// Ten minutes at a sustained rate (SLIPWAY_BENCH_SOAK_SECS): the last minute's rate
    /// against the first's.
    BusSoak,
    /// Throughput and p99 beside nginx and HAProxy in front of the same upstream.
    Gateway,
    /// A full backup and a restore of about 1 GB beside pg_dump and pg_restore, and the
    /// commits lost under steady writes when the host dies (Docker; run from the workspace).
    Backup,
    /// The stack's `up --wait` from warm images, each service's start-to-healthy (the engine's
    /// events), and each container's memory idle and under load (needs `cargo xtask images`).
    Startup,
    /// Release after release of the stack to a second engine over SSH, under load, beside
    /// `docker compose up -d` of the same change (needs `cargo xtask images` first; root).
    Deploy,
}

pub async fn run(target: Target) -> anyhow::Result<()> {
    match target {
        Target::Auth => auth::run().await,
        Target::Bus => bus::run().await,
        Target::BusNats => bus_nats::run().await,
        Target::BusSoak => bus_soak::run().await,
        Target::Gateway => gateway::run().await,
        Target::Deploy => deploy::run_bench().await,
        Target::Backup => backup::run().await,
        Target::Startup => startup::run().await,
    }
}

/// Runs `measure` on a new database (on DATABASE_URL's server, or a throwaway cluster), and
/// drops the database afterwards.
async fn on_fresh_database(measure: impl AsyncFnOnce(String) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let cluster;
    let server = match std::env::var("DATABASE_URL") {
        Ok(url) => url,
        Err(_) => {
            cluster = devdb::Cluster::start()?;
            cluster.url("postgres")
        }
    };
    let name = format!("slipway_bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let admin = sqlx::PgPool::connect(&server).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await?;
    let result = measure(replace_database(&server, &name)).await;
    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&admin).await;
    result
}

/// A server URL with another database.
fn replace_database(url: &str, name: &str) -> String {
    match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => url.to_string(),
    }
}

/// The `slipway` CLI, built (debug) for a bench that drives it.
async fn slipway_cli() -> anyhow::Result<PathBuf> {
    let built =
        tokio::process::Command::new("cargo").args(["build", "-q", "-p", "slipway-cli"]).status().await?;
    anyhow::ensure!(built.success(), "cargo build -p slipway-cli failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| crate::tidy::workspace().join("target"), PathBuf::from);
    Ok(target.join("debug/slipway"))
}

/// Prints a report and writes it to target/bench/<name>.json.
fn publish_report(name: &str, report: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(report)?);
    let path = results_path(name);
    std::fs::create_dir_all(path.parent().unwrap_or(std::path::Path::new(".")))?;
    std::fs::write(&path, serde_json::to_vec_pretty(report)?)?;
    eprintln!("bench: written to {}", path.display());
    Ok(())
}

/// The fields of a process's `stat` file (`/proc/<pid>/stat`, or `/proc/self/stat`) after the
/// command's closing parenthesis: state is field 0, ppid 1, pgrp 2, utime 11, stime 12. Empty
/// if it cannot be read (the process is gone).
fn proc_stat(stat_file: &std::path::Path) -> Vec<String> {
    let stat = std::fs::read_to_string(stat_file).unwrap_or_default();
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// A process's user and system CPU time so far, in seconds, from its `stat` fields (clock
/// ticks of 1/100 s); 0 for what cannot be read.
fn cpu_times(stat: &[String]) -> (f64, f64) {
    let ticks = |i: usize| stat.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) / 100.0, ticks(12) / 100.0)
}

/// Where results go: target/bench/<name>.json.
fn results_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    target.join("bench").join(format!("{name}.json"))
}

/// The median of some figures (the mean of the middle two for an even count; NaN if none).
fn median(figures: impl Iterator<Item = f64>) -> f64 {
    let mut figures: Vec<f64> = figures.collect();
    figures.sort_by(f64::total_cmp);
    match figures.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => figures[n / 2],
        n => (figures[n / 2 - 1] + figures[n / 2]) / 2.0,
    }
}

/// Each named ratio's median over the rounds, set in `report` under its name; every round
/// names the same ratios in the same order.
fn median_ratios(report: &mut serde_json::Value, rounds: &[Vec<(&'static str, f64)>]) {
    let Some(first) = rounds.first() else { return };
    for (i, (name, _)) in first.iter().enumerate() {
        report[*name] = serde_json::json!(median(rounds.iter().filter_map(|r| r.get(i)).map(|(_, r)| *r)));
    }
}

/// The q-quantile of durations (sorted in place), in milliseconds.
fn quantile_ms(samples: &mut [Duration], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_unstable();
    let i = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[i].as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_median_is_the_middle_figure_or_the_mean_of_the_middle_two() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), 2.5);
        assert!(median(std::iter::empty()).is_nan());
    }

    #[test]
    fn each_named_ratio_gets_its_median_over_the_rounds() {
        let rounds =
            vec![vec![("a", 1.0), ("b", 10.0)], vec![("a", 3.0), ("b", 30.0)], vec![("a", 2.0), ("b", 20.0)]];
        let mut report = serde_json::json!({ "kept": true });
        median_ratios(&mut report, &rounds);
        assert_eq!(report, serde_json::json!({ "kept": true, "a": 2.0, "b": 20.0 }));
    }
}
