//! The gateway benchmark: nginx (with its access log on; off; and doing the gateway's whole job,
//! with a rate limit, forwarding fields and a request id too) and HAProxy (Debian's packages)
//! as reverse proxies in front of the same upstream, and the gateway with routing, access
//! logging and rate limiting on; each proxy with one worker pinned to one core, wrk and
//! the upstream to the other, then the cores swapped. Figures are ratios to the peers, per
//! placement: of the medians over the rounds, and the median of each round's own ratio. Each
//! proxy's CPU time per request (user and system, measured over the same runs: steadier than
//! throughput when the machine's speed drifts), its resident memory (its whole process group)
//! idle and at its peak under load, and how busy each core was during its runs (when the load's
//! core is as busy as the proxies', the load caps them all alike) are reported too.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::process::{Child, Command};

/// One round's run per proxy, after a one-second warm-up.
const DURATION: &str = "5s";
/// Interleaved rounds per proxy; figures are medians. Ten short rounds rather than five long
/// ones (the same time): a p99 here moves by a third from one run to the next for every
/// proxy, and the machine's speed by a quarter within a minute, so more pairs, each run
/// closer in time to its peers', make steadier medians.
const ROUNDS: usize = 10;

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A server started in its own process group; dropping it stops the whole group, so nginx's
/// workers do not outlive their master.
struct Server(Child);

impl Server {
    /// The `/proc` directory and `stat` fields of every process in its group (nginx's master
    /// and worker).
    fn processes(&self) -> Vec<(std::path::PathBuf, Vec<String>)> {
        let Some(group) = self.0.id().map(|g| g.to_string()) else { return Vec::new() };
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| (super::proc_stat(&entry.path().join("stat")), entry.path()))
            .filter(|(stat, _)| stat.get(2) == Some(&group))
            .map(|(stat, dir)| (dir, stat))
            .collect()
    }

    /// The resident memory of its whole group, in MB: now (`VmRSS`) and at its peak so far
    /// (`VmHWM`).
    fn memory(&self) -> (f64, f64) {
        let mut totals = (0_u64, 0_u64);
        for (dir, _) in self.processes() {
            let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
            let kib = |field: &str| -> u64 {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(field))
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0)
            };
            totals.0 += kib("VmRSS:");
            totals.1 += kib("VmHWM:");
        }
        (totals.0 as f64 / 1024.0, totals.1 as f64 / 1024.0)
    }

    /// The user and system CPU time of its whole group so far, in seconds.
    fn cpu(&self) -> (f64, f64) {
        self.processes()
            .iter()
            .map(|(_, stat)| super::cpu_times(stat))
            .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(pid) = self.0.id() {
            let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status();
        }
    }
}

fn spawn(
    core: &str,
    program: &str,
    args: &[&str],
    envs: &[(&str, String)],
    log: &Path,
) -> anyhow::Result<Server> {
    let out = std::fs::File::create(log)?;
    Command::new("taskset")
        .args(["-c", core, program])
        .args(args)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(out)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map(Server)
        .map_err(|e| anyhow::anyhow!("cannot start {program}: {e} (apt-get install nginx-light haproxy wrk)"))
}

async fn wait_for(url: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if reqwest::get(url).await.is_ok_and(|r| r.status() == 200) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{url} never answered 200")
}

/// One proxy's figures from one wrk run.
#[derive(Debug, Clone, Copy)]
struct Run {
    rps: f64,
    p99_ms: f64,
    /// The proxy's CPU time per request, user and system, in microseconds: what it costs,
    /// whichever core is the bottleneck.
    user_us: f64,
    system_us: f64,
    /// How busy each core was over the run (user, system, interrupts; 1.0 is fully busy): the
    /// proxies' core and the load's. When both are near 1.0, the load's side (wrk and the
    /// upstream) caps every proxy alike, and a proxy cheaper per request cannot show it fully.
    proxy_core_busy: f64,
    load_core_busy: f64,
}

/// The kernel's CPU counters now (`/proc/stat`), empty if they cannot be read.
fn cpu_counters() -> String {
    std::fs::read_to_string("/proc/stat").unwrap_or_default()
}

/// One core's busy and total time, in clock ticks, from a `/proc/stat` reading: busy is user,
/// nice, system, interrupt, soft interrupt and steal time; total adds idle and I/O wait.
fn core_ticks(stat: &str, core: &str) -> (u64, u64) {
    let fields: Vec<u64> = stat
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cpu{core} ")))
        .map(|rest| rest.split_whitespace().filter_map(|f| f.parse().ok()).collect())
        .unwrap_or_default();
    let at = |i: usize| fields.get(i).copied().unwrap_or(0);
    let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
    (busy, busy + at(3) + at(4))
}

/// The share of the time between two `core_ticks` readings a core was busy.
fn busy_between(before: (u64, u64), after: (u64, u64)) -> f64 {
    let total = after.1.saturating_sub(before.1);
    if total == 0 { f64::NAN } else { after.0.saturating_sub(before.0) as f64 / total as f64 }
}

/// Runs wrk on core `load` against a URL `server` (on core `proxies`) answers, after a warm-up.
async fn wrk((proxies, load): (&str, &str), url: &str, server: &Server) -> anyhow::Result<Run> {
    let _warm =
        Command::new("taskset").args(["-c", load, "wrk", "-t1", "-c64", "-d1s", url]).output().await?;
    let before = server.cpu();
    let stat_before = cpu_counters();
    let out = Command::new("taskset")
        .args(["-c", load, "wrk", "-t1", "-c64", &format!("-d{DURATION}"), "--latency", url])
        .output()
        .await?;
    let stat_after = cpu_counters();
    let busy = |core| busy_between(core_ticks(&stat_before, core), core_ticks(&stat_after, core));
    let (proxy_core_busy, load_core_busy) = (busy(proxies), busy(load));
    let after = server.cpu();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (rps, p99_ms, requests) = parse_wrk(&text)?;
    let errors =
        text.lines().find(|l| l.contains("Non-2xx") || l.contains("Socket errors")).map(str::to_string);
    if let Some(e) = errors {
        eprintln!("bench: {url}: {e}");
    }
    let per_request = |seconds: f64| seconds * 1e6 / requests;
    Ok(Run {
        rps,
        p99_ms,
        user_us: per_request(after.0 - before.0),
        system_us: per_request(after.1 - before.1),
        proxy_core_busy,
        load_core_busy,
    })
}

/// What wrk printed (with `--latency`): requests per second, p99 latency in ms, and how many
/// requests it made.
fn parse_wrk(text: &str) -> anyhow::Result<(f64, f64, f64)> {
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| anyhow::anyhow!("no Requests/sec in wrk output:\n{text}"))?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| millis(v.trim()))
        .ok_or_else(|| anyhow::anyhow!("no 99% latency in wrk output:\n{text}"))?;
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").and_then(|(n, _)| n.parse::<f64>().ok()))
        .ok_or_else(|| anyhow::anyhow!("no request count in wrk output:\n{text}"))?;
    Ok((rps, p99, requests))
}

fn millis(v: &str) -> f64 {
    let (n, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = n.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => f64::NAN,
    }
}

/// The proxies; the gateway last.
const PROXIES: [&str; 5] = ["nginx", "nginx-no-log", "nginx-full", "haproxy", "gateway"];

/// The order of the proxies in round `round` (from 0): each round starts one proxy later, so
/// that none always runs first, last, or right after the same peer.
fn rotation(round: usize) -> impl Iterator<Item = usize> {
    (0..PROXIES.len()).map(move |i| (round + i) % PROXIES.len())
}

/// The gateway's throughput and p99 against a peer's round by round, and the median of each.
fn paired(gateway: &[Run], peer: &[Run]) -> serde_json::Value {
    let throughput: Vec<f64> = gateway.iter().zip(peer).map(|(g, p)| g.rps / p.rps).collect();
    let p99: Vec<f64> = gateway.iter().zip(peer).map(|(g, p)| g.p99_ms / p.p99_ms).collect();
    json!({
        "throughput": super::median(throughput.iter().copied()),
        "p99": super::median(p99.iter().copied()),
        "rounds": { "throughput": throughput, "p99": p99 },
    })
}

pub async fn run() -> anyhow::Result<()> {
    eprintln!("bench: building the gateway (release)");
    let built =
        Command::new("cargo").args(["build", "--release", "--quiet", "-p", "gateway"]).status().await?;
    anyhow::ensure!(built.success(), "cargo build failed");
    let mut placements = serde_json::Map::new();
    for (proxies, load) in [("0", "1"), ("1", "0")] {
        let key = format!("proxies_on_core_{proxies}");
        placements.insert(key, placement(proxies, load).await?);
    }
    let report = json!({
        "placements": placements,
        "rounds": ROUNDS,
        "nginx": "with its access log (as the gateway logs), without (nginx-no-log), and doing the gateway's whole job (nginx-full: access log, a rate limit, X-Forwarded-* and a request id)",
        "goal": "gateway throughput >= 1.0 x nginx and p99 <= nginx's, in every placement and nginx configuration",
    });
    super::publish_report("gateway", &report)
}

/// Every proxy on core `proxies`, wrk and the upstream on core `load`: each proxy's figures
/// (medians of interleaved rounds) and the gateway's ratios to each peer.
async fn placement(proxies: &str, load: &str) -> anyhow::Result<serde_json::Value> {
    let dir = std::env::temp_dir().join(format!("slipway-bench-gw-{}-{proxies}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let d = dir.display();
    let (up, ngx, quiet, full, hap, gw, admin) =
        (free_port()?, free_port()?, free_port()?, free_port()?, free_port()?, free_port()?, free_port()?);

    std::fs::write(
        dir.join("upstream.conf"),
        format!(
            "worker_processes 1; pid {d}/up.pid; error_log {d}/up-error.log; events {{ worker_connections 4096; }}\n\
             http {{ access_log off; server {{ listen 127.0.0.1:{up}; location / {{ return 200 \"ok\\n\"; }} }} }}\n"
        ),
    )?;
    // nginx-full does the gateway's whole job: access log, a rate limit per client address, the
    // `X-Forwarded-*` fields and a request id on the way in and out.
    let (limit_zone, same_job) = (
        "limit_req_zone $binary_remote_addr zone=per_client:1m rate=100000000r/s;",
        "limit_req zone=per_client burst=1000000 nodelay; \
         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto $scheme; \
         proxy_set_header X-Forwarded-Host $host; proxy_set_header X-Request-Id $request_id; \
         add_header X-Request-Id $request_id always;",
    );
    for (name, port, log, http, location) in [
        ("nginx", ngx, format!("{d}/nginx-access.log"), "", ""),
        ("nginx-no-log", quiet, "off".to_string(), "", ""),
        ("nginx-full", full, format!("{d}/nginx-full-access.log"), limit_zone, same_job),
    ] {
        std::fs::write(
            dir.join(format!("{name}.conf")),
            format!(
                "worker_processes 1; pid {d}/{name}.pid; error_log {d}/{name}-error.log; events {{ worker_connections 4096; }}\n\
                 http {{ access_log {log}; {http} upstream up {{ server 127.0.0.1:{up}; keepalive 64; }}\n\
                 server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; {location} }} }} }}\n"
            ),
        )?;
    }
    std::fs::write(
        dir.join("haproxy.cfg"),
        format!(
            "global\n  nbthread 1\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  http-reuse always\n\
             frontend f\n  bind 127.0.0.1:{hap}\n  default_backend b\nbackend b\n  server s1 127.0.0.1:{up}\n"
        ),
    )?;
    std::fs::write(
        dir.join("routes.toml"),
        format!(
            "[[route]]\nname = \"bench\"\ninstances = [\"127.0.0.1:{up}\"]\nrate_limit = \"100000000/1s\"\nhealth = {{ path = \"/\", interval = \"1s\" }}\n"
        ),
    )?;

    let nginx_at = |name: &str, core: &str| {
        let conf = format!("{d}/{name}.conf");
        spawn(
            core,
            "nginx",
            &["-p", &d.to_string(), "-c", &conf, "-g", "daemon off;"],
            &[],
            &dir.join(format!("{name}.out")),
        )
    };
    let _upstream = nginx_at("upstream", load)?;
    wait_for(&format!("http://127.0.0.1:{up}/")).await?;
    let nginx = nginx_at("nginx", proxies)?;
    let nginx_quiet = nginx_at("nginx-no-log", proxies)?;
    let nginx_full = nginx_at("nginx-full", proxies)?;
    let haproxy = spawn(
        proxies,
        "haproxy",
        &["-f", &format!("{d}/haproxy.cfg"), "-db"],
        &[],
        &dir.join("haproxy.out"),
    )?;
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let gateway_env = vec![
        ("SLIPWAY_ENV", "prod".to_string()),
        ("SLIPWAY_LOG", "info".to_string()),
        ("SLIPWAY_HOST", "127.0.0.1".to_string()),
        ("SLIPWAY_GATEWAY_PORT", gw.to_string()),
        ("SLIPWAY_GATEWAY_ADMIN_PORT", admin.to_string()),
        ("SLIPWAY_GATEWAY_ROUTES_PATH", format!("{d}/routes.toml")),
        ("TOKIO_WORKER_THREADS", "1".to_string()),
    ];
    let gateway = spawn(
        proxies,
        &format!("{target}/release/gateway"),
        &[],
        &gateway_env,
        &dir.join("gateway-access.log"),
    )?;
    let servers = [&nginx, &nginx_quiet, &nginx_full, &haproxy, &gateway];
    let ports = [ngx, quiet, full, hap, gw];

    // Rounds interleave the proxies, each round in a turned order, so drift in the machine's
    // speed hits each alike; each figure is the median of its rounds.
    for port in ports {
        wait_for(&format!("http://127.0.0.1:{port}/")).await?;
    }
    let idle: Vec<f64> = servers.iter().map(|s| s.memory().0).collect();
    let mut results: Vec<Vec<Run>> = vec![Vec::new(); PROXIES.len()];
    for round in 0..ROUNDS {
        for i in rotation(round) {
            eprintln!(
                "bench: proxies on core {proxies}, round {}/{ROUNDS}: wrk -t1 -c64 -d{DURATION} against {}",
                round + 1,
                PROXIES[i]
            );
            let url = format!("http://127.0.0.1:{}/", ports[i]);
            results[i].push(wrk((proxies, load), &url, servers[i]).await?);
        }
    }
    let median = |runs: &[Run], field: fn(&Run) -> f64| super::median(runs.iter().map(field));
    // Each figure is its own median over the rounds.
    let figures: Vec<Run> = results
        .iter()
        .map(|r| Run {
            rps: median(r, |x| x.rps),
            p99_ms: median(r, |x| x.p99_ms),
            user_us: median(r, |x| x.user_us),
            system_us: median(r, |x| x.system_us),
            proxy_core_busy: median(r, |x| x.proxy_core_busy),
            load_core_busy: median(r, |x| x.load_core_busy),
        })
        .collect();
    // Peak resident memory over every round: each proxy's memory under load.
    let loaded: Vec<f64> = servers.iter().map(|s| s.memory().1).collect();
    let access_lines =
        std::fs::read_to_string(dir.join("gateway-access.log")).map(|t| t.lines().count()).unwrap_or(0);
    let gateway_at = PROXIES.len() - 1;
    let gw = figures[gateway_at];
    let cpu = |r: &Run| r.user_us + r.system_us;
    let mut out = serde_json::Map::new();
    for (i, name) in PROXIES.iter().enumerate() {
        let r = figures[i];
        out.insert(
            name.to_string(),
            json!({
                "rps": r.rps,
                "p99_ms": r.p99_ms,
                // Each round's own, in order: an outlier round and a trend look different.
                "rounds": {
                    "rps": results[i].iter().map(|x| x.rps).collect::<Vec<_>>(),
                    "p99_ms": results[i].iter().map(|x| x.p99_ms).collect::<Vec<_>>(),
                },
                "cpu_us_per_request": { "user": r.user_us, "system": r.system_us },
                "core_busy": { "proxies": r.proxy_core_busy, "load": r.load_core_busy },
                "rss_mb_idle": idle[i],
                "rss_mb_peak_under_load": loaded[i],
            }),
        );
        if i != gateway_at {
            out.insert(
                format!("gateway_vs_{name}"),
                json!({
                    "throughput": gw.rps / r.rps,
                    "p99": gw.p99_ms / r.p99_ms,
                    // Each round's ratio (the two ran within a minute of each other, so a
                    // drift in the machine's speed cancels out) and their median.
                    "paired": paired(&results[gateway_at], &results[i]),
                    "cpu_per_request": cpu(&gw) / cpu(&r),
                    "user_cpu_per_request": gw.user_us / r.user_us,
                    "system_cpu_per_request": gw.system_us / r.system_us,
                    "memory_under_load": loaded[gateway_at] / loaded[i],
                }),
            );
        }
    }
    out.insert("gateway_access_log_lines".into(), json!(access_lines));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(serde_json::Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_s_report_gives_its_rate_p99_and_request_count() {
        let text = "Running 10s test @ http://127.0.0.1:8080/\n  1 threads and 64 connections\n\
                    \x20 Latency Distribution\n     50%    1.20ms\n     99%  850.00us\n\
                    \x20 481234 requests in 10.00s, 70.00MB read\nRequests/sec:  48123.40\n";
        let (rps, p99, requests) = parse_wrk(text).expect("parsed");
        assert_eq!((rps, p99, requests), (48123.4, 0.85, 481234.0));
        assert!(parse_wrk("Running 10s test\n").is_err());
    }

    #[test]
    fn every_round_runs_each_proxy_once_and_each_proxy_leads_a_round_in_turn() {
        for round in 0..8 {
            let mut order: Vec<usize> = rotation(round).collect();
            assert_eq!(order[0], round % PROXIES.len());
            order.sort_unstable();
            assert_eq!(order, (0..PROXIES.len()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_core_s_busy_share_comes_from_proc_stat_between_two_readings() {
        let stat = cpu_counters();
        let (busy, total) = core_ticks(&stat, "0");
        assert!(total > 0 && busy <= total, "cpu0 in /proc/stat: {busy} of {total}");
        assert_eq!(core_ticks(&stat, "no-such-core"), (0, 0));
        assert!((busy_between((100, 200), (150, 300)) - 0.5).abs() < 1e-9);
        assert!(busy_between((100, 200), (100, 200)).is_nan(), "no time passed: no share");
    }

    #[test]
    fn paired_ratios_are_taken_round_by_round_then_their_median() {
        let run = |rps, p99_ms| Run {
            rps,
            p99_ms,
            user_us: 0.0,
            system_us: 0.0,
            proxy_core_busy: 0.0,
            load_core_busy: 0.0,
        };
        // The machine slows in round 2 for both: the paired ratio is 1.1 in every round.
        let gateway = [run(110.0, 1.0), run(55.0, 2.0), run(110.0, 1.0)];
        let peer = [run(100.0, 2.0), run(50.0, 4.0), run(100.0, 2.0)];
        let p = paired(&gateway, &peer);
        assert!((p["throughput"].as_f64().expect("a number") - 1.1).abs() < 1e-9, "{p}");
        assert_eq!(p["p99"], 0.5);
        assert_eq!(p["rounds"]["throughput"].as_array().map(Vec::len), Some(3));
    }
}
