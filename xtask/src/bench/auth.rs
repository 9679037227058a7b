//! The auth benchmark: the release binary against a real Postgres, driven over HTTP.
//!
//! Peers measured in the same run: the argon2id hash time with auth's parameters gives the
//! ceiling `cores ÷ hash time` for logins/s (a login is one hash); `/me` latency with no load
//! is the baseline for `/me` under a login flood.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde_json::{Value, json};
use tokio::process::Command;

use super::quantile_ms;

const USERS: usize = 32;
const PASSWORD: &str = "benchmark passphrase 42";
const FLOOD: Duration = Duration::from_secs(8);
const REFRESH: Duration = Duration::from_secs(5);

pub async fn run() -> anyhow::Result<()> {
    eprintln!("bench: building auth (release)");
    let built = Command::new("cargo").args(["build", "--release", "--quiet", "-p", "auth"]).status().await?;
    anyhow::ensure!(built.success(), "cargo build failed");

    super::on_fresh_database(async |url: String| measure(&url).await).await
}

async fn measure(db_url: &str) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let mut child = Command::new(format!("{target}/release/auth"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs([
            ("SLIPWAY_ENV", "test"),
            ("SLIPWAY_DATABASE_URL", db_url),
            ("SLIPWAY_AUTH_PORT", &port.to_string()),
            ("SLIPWAY_LOG", "warn"),
            ("SLIPWAY_DATABASE_MAX_CONNECTIONS", "20"),
            ("SLIPWAY_AUTH_LIMIT_LOGIN_IP", "off"),
            ("SLIPWAY_AUTH_LIMIT_LOGIN_EMAIL", "off"),
            ("SLIPWAY_AUTH_LIMIT_SIGNUP_IP", "off"),
            ("SLIPWAY_AUTH_LIMIT_SIGNUP_EMAIL", "off"),
            ("SLIPWAY_AUTH_LOCKOUT", "off"),
        ])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("start the auth binary")?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    wait_ready(&client, &base).await?;

    let hash_ms = argon2_hash_ms();
    let ceiling = cores as f64 / (hash_ms / 1000.0);
    eprintln!(
        "bench: argon2id m=19456 t=2 p=1: {hash_ms:.1} ms per hash → ceiling {ceiling:.1} logins/s on {cores} cores"
    );

    let users = create_users(&client, &base, db_url).await?;
    let token =
        login(&client, &base, &users[0]).await?["access_token"].as_str().unwrap_or_default().to_string();

    let idle =
        me_latencies(&client, &base, &token, Arc::new(AtomicBool::new(false)), Some(Duration::from_secs(2)))
            .await;
    let (logins, under_load) = login_flood(&client, &base, &users, &token, cores * 4).await?;
    let refreshes = refresh_rate(&client, &base, &users, cores * 4).await?;
    let _ = child.kill().await;

    let (mut idle, mut under_load) = (idle, under_load);
    let report = json!({
        "cores": cores,
        "argon2_hash_ms": hash_ms,
        "login_ceiling_per_s": ceiling,
        "logins_per_s": logins,
        "logins_vs_ceiling": logins / ceiling,
        "refreshes_per_s": refreshes,
        "me_idle_p50_ms": quantile_ms(&mut idle, 0.5),
        "me_idle_p99_ms": quantile_ms(&mut idle, 0.99),
        "me_flood_p50_ms": quantile_ms(&mut under_load, 0.5),
        "me_flood_p99_ms": quantile_ms(&mut under_load, 0.99),
        "me_flood_samples": under_load.len(),
    });
    super::publish_report("auth", &report)?;
    Ok(())
}

async fn wait_ready(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for _ in 0..300 {
        if client.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("auth did not become ready")
}

/// The median time of one argon2id hash with auth's default parameters, on one core.
fn argon2_hash_ms() -> f64 {
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut times: Vec<Duration> = (0..15)
        .map(|_| {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            let start = Instant::now();
            let _ = argon.hash_password(PASSWORD.as_bytes(), &salt);
            start.elapsed()
        })
        .collect();
    quantile_ms(&mut times, 0.5)
}

async fn create_users(client: &reqwest::Client, base: &str, db_url: &str) -> anyhow::Result<Vec<String>> {
    let emails: Vec<String> = (0..USERS).map(|i| format!("bench{i}@example.com")).collect();
    for email in &emails {
        let res = client
            .post(format!("{base}/signup"))
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await?;
        anyhow::ensure!(res.status() == 202, "signup answered {}", res.status());
    }
    let pool = sqlx::PgPool::connect(db_url).await?;
    sqlx::query("UPDATE auth.users SET activated_at = now()").execute(&pool).await?;
    Ok(emails)
}

async fn login(client: &reqwest::Client, base: &str, email: &str) -> anyhow::Result<Value> {
    let res = client
        .post(format!("{base}/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await?;
    anyhow::ensure!(res.status() == 200, "login answered {}", res.status());
    Ok(res.json().await?)
}

/// Sequential `/me` requests until `stop` (or for `limit`), their latencies.
async fn me_latencies(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    stop: Arc<AtomicBool>,
    limit: Option<Duration>,
) -> Vec<Duration> {
    let started = Instant::now();
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) && limit.is_none_or(|l| started.elapsed() < l) {
        let t = Instant::now();
        if client.get(format!("{base}/me")).bearer_auth(token).send().await.is_ok_and(|r| r.status() == 200) {
            samples.push(t.elapsed());
        }
    }
    samples
}

/// `workers` clients logging in as fast as they can; logins/s, and `/me` latencies meanwhile.
async fn login_flood(
    client: &reqwest::Client,
    base: &str,
    users: &[String],
    token: &str,
    workers: usize,
) -> anyhow::Result<(f64, Vec<Duration>)> {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (client, base, done, stop) = (client.clone(), base.to_string(), done.clone(), stop.clone());
        let email = users[w % users.len()].clone();
        tasks.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if login(&client, &base, &email).await.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let probe =
        tokio::spawn(me_latencies_owned(client.clone(), base.to_string(), token.to_string(), stop.clone()));
    let started = Instant::now();
    tokio::time::sleep(FLOOD).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let count = done.load(Ordering::Relaxed) as f64;
    tasks.join_all().await;
    Ok((count / elapsed, probe.await?))
}

async fn me_latencies_owned(
    client: reqwest::Client,
    base: String,
    token: String,
    stop: Arc<AtomicBool>,
) -> Vec<Duration> {
    me_latencies(&client, &base, &token, stop, None).await
}

/// `workers` sessions rotating their refresh tokens as fast as they can; refreshes/s.
async fn refresh_rate(
    client: &reqwest::Client,
    base: &str,
    users: &[String],
    workers: usize,
) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + REFRESH;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let mut refresh = login(client, base, &users[w % users.len()]).await?["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (client, base, done) = (client.clone(), base.to_string(), done.clone());
        tasks.spawn(async move {
            while Instant::now() < deadline {
                let res = client
                    .post(format!("{base}/token/refresh"))
                    .json(&json!({ "refresh_token": refresh }))
                    .send()
                    .await;
                let Ok(res) = res else { continue };
                let Ok(body) = res.json::<Value>().await else { break };
                let Some(next) = body["refresh_token"].as_str() else { break };
                refresh = next.to_string();
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let started = Instant::now();
    tasks.join_all().await;
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}
