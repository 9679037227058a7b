//! `cargo xtask bench startup`: the stack from warm images (`cargo xtask images` built them):
//! `docker compose up -d --wait` of the base file on a new volume and again on the kept one,
//! each service's time from its container's start to its first healthy check (read from the
//! engine's events), and each container's resident memory idle and while the gateway and
//! auth serve a load (wrk on auth's JWKS through the gateway).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::process::Command;

const PROJECT: &str = "slipway-bench-startup";

/// The stack's folder and the variables its compose commands get.
struct Stack {
    dir: PathBuf,
    envs: Vec<(&'static str, String)>,
}

impl Stack {
    async fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(program)
            .args(args)
            .current_dir(&self.dir)
            .envs(self.envs.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .await
            .with_context(|| format!("cannot run {program}"))?;
        if !out.status.success() {
            bail!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    }

    async fn compose(&self, args: &[&str]) -> anyhow::Result<String> {
        self.run("docker", &[&["compose", "-p", PROJECT, "-f", "docker-compose.yml"][..], args].concat())
            .await
    }

    /// `up -d --wait` without building; its wall time, and each container's start-to-healthy.
    async fn up(&self) -> anyhow::Result<(f64, BTreeMap<String, f64>)> {
        let since = self.run("date", &["+%s.%N"]).await?;
        let started = Instant::now();
        self.compose(&["up", "-d", "--wait", "--no-build"]).await?;
        let took = started.elapsed().as_secs_f64();
        let until = self.run("date", &["+%s.%N"]).await?;
        let filter = format!("label=com.docker.compose.project={PROJECT}");
        let events = self
            .run(
                "docker",
                &[
                    "events",
                    "--since",
                    since.trim(),
                    "--until",
                    until.trim(),
                    "--filter",
                    &filter,
                    "--format",
                    "{{json .}}",
                ],
            )
            .await?;
        Ok((took, start_to_healthy(&events)))
    }

    /// Each running container's resident memory in MB, by service.
    async fn memory(&self) -> anyhow::Result<BTreeMap<String, f64>> {
        let ids = self.compose(&["ps", "-q"]).await?;
        let ids: Vec<&str> = ids.split_whitespace().collect();
        let format = ["stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}"];
        let out = self.run("docker", &[&format[..], &ids].concat()).await?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let name = service_of(words.next()?);
                Some((name, megabytes(words.next()?)?))
            })
            .collect())
    }
}

/// `slipway-bench-startup-auth-1` → `auth-1`.
fn service_of(container: &str) -> String {
    container.strip_prefix(&format!("{PROJECT}-")).unwrap_or(container).to_string()
}

/// `12.5MiB` → 13.1 (MB).
fn megabytes(usage: &str) -> Option<f64> {
    let split = usage.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = usage.split_at(split);
    let n: f64 = n.parse().ok()?;
    let bytes = match unit {
        "B" => n,
        "KiB" => n * 1024.0,
        "MiB" => n * 1024.0 * 1024.0,
        "GiB" => n * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(bytes / 1e6)
}

/// From the engine's events (one JSON object a line): for each container that turned
/// healthy, the seconds from its `start` to its first `health_status: healthy`.
fn start_to_healthy(events: &str) -> BTreeMap<String, f64> {
    let mut started: BTreeMap<String, i64> = BTreeMap::new();
    let mut healthy = BTreeMap::new();
    for event in events.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
        let Some(name) = event["Actor"]["Attributes"]["name"].as_str() else { continue };
        let at = event["timeNano"].as_i64().unwrap_or(0);
        match event["status"].as_str() {
            Some("start") => {
                started.insert(name.to_string(), at);
            }
            Some("health_status: healthy") => {
                if let Some(from) = started.get(name) {
                    healthy.entry(service_of(name)).or_insert((at - from) as f64 / 1e9);
                }
            }
            _ => {}
        }
    }
    healthy
}

pub async fn run() -> anyhow::Result<()> {
    let slipway = super::slipway_cli().await?;
    let dir = std::env::temp_dir().join(format!("slipway-bench-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    for file in ["docker-compose.yml", ".env"] {
        std::fs::copy(crate::tidy::workspace().join(file), dir.join(file))?;
    }
    let socket = std::fs::metadata("/var/run/docker.sock").context("the engine's socket")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let stack = Stack {
        dir: dir.clone(),
        envs: vec![
            ("DOCKER_GID", std::os::unix::fs::MetadataExt::gid(&socket).to_string()),
            ("SLIPWAY_TAG", "latest".into()),
            ("SLIPWAY_HTTP_PUBLISH", format!("127.0.0.1:{port}")),
        ],
    };
    let slipway = slipway.to_string_lossy().to_string();
    stack.run(&slipway, &["env", "secrets", "--files", "secrets"]).await?;
    let _ = stack.compose(&["down", "-v", "--timeout", "5"]).await;
    let result = measure(&stack, port).await;
    let _ = stack.compose(&["down", "-v", "--timeout", "5"]).await;
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    super::publish_report("startup", &report)
}

async fn measure(stack: &Stack, port: u16) -> anyhow::Result<Value> {
    eprintln!("bench: up --wait on a new volume (Postgres initialised, migrations applied)");
    let (cold, cold_services) = stack.up().await?;
    let idle = stack.memory().await?;
    // Under load: the gateway and auth serve auth's JWKS for 10 s; memory sampled in the
    // middle of it.
    let url = format!("http://127.0.0.1:{port}/api/auth/.well-known/jwks.json");
    let load = Command::new("wrk").args(["-t1", "-c32", "-d10s", &url]).output();
    let sample = async {
        tokio::time::sleep(Duration::from_secs(6)).await;
        stack.memory().await
    };
    let (load, loaded) = tokio::join!(load, sample);
    let load = load.context("cannot run wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&load.stdout);
    let rps = text.lines().find_map(|l| l.trim().strip_prefix("Requests/sec:")).map(|v| v.trim().to_string());
    let loaded = loaded?;
    eprintln!("bench: down, then up --wait again on the kept volume (warm images, warm database)");
    stack.compose(&["down", "--timeout", "5"]).await?;
    let (warm, warm_services) = stack.up().await?;
    let engine = stack.run("docker", &["version", "--format", "{{.Server.Version}}"]).await?;
    let report = json!({
        "engine": engine.trim(),
        "up_wait_seconds": { "new_volume": cold, "kept_volume": warm, "goal": 5.0 },
        "start_to_healthy_seconds": { "new_volume": cold_services, "kept_volume": warm_services, "goal": 0.2 },
        "memory_mb": { "idle": idle, "under_load": loaded, "load": { "url": url, "rps": rps } },
        "note": "the compose file's start_interval (100 ms until the first healthy check) needs Engine 25 or \
                 newer: an older one runs the first check one interval (5 s) after the start",
    });
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_to_healthy_is_read_from_the_engines_events_per_container() {
        let events = [
            r#"{"status":"start","timeNano":1000000000,"Actor":{"Attributes":{"name":"slipway-bench-startup-auth-1"}}}"#,
            r#"{"status":"health_status: starting","timeNano":1100000000,"Actor":{"Attributes":{"name":"slipway-bench-startup-auth-1"}}}"#,
            r#"{"status":"health_status: healthy","timeNano":6250000000,"Actor":{"Attributes":{"name":"slipway-bench-startup-auth-1"}}}"#,
            r#"{"status":"health_status: healthy","timeNano":9000000000,"Actor":{"Attributes":{"name":"slipway-bench-startup-auth-1"}}}"#,
            r#"{"status":"start","timeNano":2000000000,"Actor":{"Attributes":{"name":"slipway-bench-startup-migrate-1"}}}"#,
        ]
        .join("\n");
        let healthy = start_to_healthy(&events);
        assert_eq!(healthy.len(), 1, "{healthy:?}");
        assert!((healthy["auth-1"] - 5.25).abs() < 1e-9, "{healthy:?}");
    }

    #[test]
    fn docker_stats_memory_reads_as_megabytes() {
        assert_eq!(megabytes("512KiB").map(|m| (m * 1000.0).round()), Some(524.0));
        assert_eq!(megabytes("12.5MiB").map(|m| (m * 10.0).round()), Some(131.0));
        assert_eq!(megabytes("n/a"), None);
    }
}
