//! The deploy benchmark: release after release of the whole stack to a second Docker engine
//! reached over SSH (testkit's `RemoteHost`), under a steady load through the gateway, with
//! `slipway deploy` (images streamed, then images already on the host) and, on the same
//! engine, `docker compose up -d` of the same change. Figures: seconds per release and
//! requests failed, with the ratio of the two times.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use testkit::load::{Counts, Load};
use testkit::remote::RemoteHost;
use tokio::process::Command;

use super::results_path;

/// The images' namespace (`slipway/auth`).
const NS: &str = project::IMAGES;
const IMAGES: [&str; 5] = ["auth", "mailer", "web", "gateway", "slipway"];

/// Runs `program args…` (with `envs`), failing with its output if it fails.
async fn run(program: &Path, dir: &Path, envs: &[(&str, &str)], args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program).current_dir(dir).envs(envs.iter().copied()).args(args).output().await?;
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    anyhow::ensure!(out.status.success(), "{} {} failed:\n{said}", program.display(), args.join(" "));
    Ok(said)
}

/// Gives this machine's `slipway/<image>:latest` (from `cargo xtask images`) the tag `tag`.
async fn tag_release(tag: &str) -> anyhow::Result<()> {
    for image in IMAGES {
        let (from, to) = (format!("{NS}/{image}:latest"), format!("{NS}/{image}:{tag}"));
        run(Path::new("docker"), Path::new("."), &[], &["tag", &from, &to])
            .await
            .map_err(|e| anyhow::anyhow!("{e}\n(build the images first: cargo xtask images)"))?;
    }
    Ok(())
}

/// One measured release: how long it took and what the load saw meanwhile.
async fn measured(
    site: &str,
    release: impl AsyncFnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<(f64, Counts)> {
    let load = Load::start(&[format!("{site}/api/auth/healthz"), format!("{site}/healthz")], 4);
    let started = Instant::now();
    let result = release().await;
    let seconds = started.elapsed().as_secs_f64();
    let counts = load.stop().await;
    result.map(|()| (seconds, counts))
}

pub async fn run_bench() -> anyhow::Result<()> {
    let slipway = super::slipway_cli().await?;
    let host = RemoteHost::start().await;
    let dir = std::env::temp_dir().join(format!("slipway-bench-deploy-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    for file in ["docker-compose.yml", "docker-compose.prod.yml", ".env"] {
        std::fs::copy(crate::tidy::workspace().join(file), dir.join(file))?;
    }
    let site = format!("http://{}:8080", host.address);
    let toml = format!("[destinations.bench]\nengine = \"{}\"\npublic_url = \"{site}\"\n", host.engine());
    std::fs::write(dir.join("deploy.toml"), toml)?;
    let path = host.path();
    let envs = [("PATH", path.as_str())];
    run(&slipway, &dir, &envs, &["env", "secrets", "--files", "secrets"]).await?;
    let deploy =
        async |tag: &str| run(&slipway, &dir, &envs, &["deploy", "bench", "--tag", tag]).await.map(drop);

    tag_release("bench-1").await?;
    let started = Instant::now();
    deploy("bench-1").await?;
    let first = started.elapsed().as_secs_f64();
    println!("bench: first deploy (every image streamed, stack started): {first:.1} s");

    tag_release("bench-2").await?;
    let (streamed, streamed_load) = measured(&site, async || deploy("bench-2").await).await?;
    println!("bench: slipway deploy, images streamed: {streamed:.1} s, {streamed_load:?}");

    // The host already has the next release's images (tagged there, as a registry pull
    // or an earlier stream would have left them).
    tag_release("bench-3").await?;
    for image in IMAGES {
        let (from, to) = (format!("{NS}/{image}:bench-2"), format!("{NS}/{image}:bench-3"));
        host.docker_local(&["tag", &from, &to])
            .await
            .ok_or_else(|| anyhow::anyhow!("tagging {to} on the host"))?;
    }
    let (on_host, on_host_load) = measured(&site, async || deploy("bench-3").await).await?;
    println!("bench: slipway deploy, images on the host: {on_host:.1} s, {on_host_load:?}");

    // The peer: the same change by `docker compose up -d` on the same engine and database,
    // images on the host. Compose runs its own stack (slipway's containers removed, volumes
    // kept): first bench-3, then bench-4 measured, up to the command's end and until the new
    // release answers.
    for image in IMAGES {
        let (from, to) = (format!("{NS}/{image}:bench-3"), format!("{NS}/{image}:bench-4"));
        host.docker_local(&["tag", &from, &to])
            .await
            .ok_or_else(|| anyhow::anyhow!("tagging {to} on the host"))?;
    }
    let all = host.docker_local(&["ps", "--all", "--quiet"]).await.unwrap_or_default();
    let all: Vec<&str> = all.split_whitespace().collect();
    host.docker_local(&[&["rm", "--force"][..], &all].concat()).await;
    let socket = format!("unix://{}", host.dir().join("docker.sock").display());
    let stat = ["run", "--rm", "--user", "0", "-v", "/var/run/docker.sock:/var/run/docker.sock:ro"];
    let gid = host
        .docker_local(
            &[&stat[..], &[&format!("{NS}/slipway:bench-4"), "file-group", "/var/run/docker.sock"]].concat(),
        )
        .await;
    let gid = gid.unwrap_or_else(|| "0".into());
    let compose = async |tag: &str, wait: bool| {
        let envs = [
            ("DOCKER_HOST", socket.as_str()),
            ("SLIPWAY_TAG", tag),
            ("SLIPWAY_PUBLIC_URL", site.as_str()),
            ("SLIPWAY_HTTP_PUBLISH", "0.0.0.0:8080"),
            ("DOCKER_GID", gid.as_str()),
        ];
        let mut args =
            vec!["compose", "-f", "docker-compose.yml", "-f", "docker-compose.prod.yml", "up", "--detach"];
        args.extend(["--no-build", "--pull", "never"]);
        if wait {
            args.push("--wait");
        }
        run(Path::new("docker"), &dir, &envs, &args).await.map(drop)
    };
    compose("bench-3", true).await?;
    let http = reqwest::Client::new();
    let (mut serving_new, mut command) = (0.0, 0.0);
    let (_, compose_load) = measured(&site, async || {
        let started = Instant::now();
        compose("bench-4", false).await?;
        command = started.elapsed().as_secs_f64();
        loop {
            let said = http.get(format!("{site}/api/auth/healthz")).send().await;
            let body = match said {
                Ok(r) => r.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if body.contains("\"bench-4\"") || started.elapsed() > Duration::from_secs(120) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        serving_new = started.elapsed().as_secs_f64();
        Ok(())
    })
    .await?;
    println!(
        "bench: docker compose up -d, images on the host: {command:.1} s (the new release answering after \
         {serving_new:.1} s), {compose_load:?}"
    );

    let ratio = on_host / command;
    println!(
        "\nslipway deploy (images on the host) took {ratio:.1}× the time of docker compose up -d; \
         requests failed: {} (slipway, streamed), {} (slipway, on the host), {} (compose)",
        streamed_load.failed(),
        on_host_load.failed(),
        compose_load.failed()
    );
    let counts = |c: Counts| json!({ "answered": c.answered, "errors": c.errors, "dropped": c.dropped });
    let results = json!({
        "first_deploy_seconds": first,
        "slipway_streamed": { "seconds": streamed, "load": counts(streamed_load) },
        "slipway_on_host": { "seconds": on_host, "load": counts(on_host_load) },
        "compose_up": { "seconds": command, "new_release_answering_after": serving_new, "load": counts(compose_load) },
        "time_ratio_slipway_on_host_to_compose": ratio,
    });
    let path = results_path("deploy");
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    std::fs::write(&path, serde_json::to_string_pretty(&results)?)?;
    println!("written to {}", path.display());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
