//! `cargo xtask images`: the project's images (`project::IMAGES/<target>`), built from the
//! Dockerfile and tagged immutably with the git commit (plus `latest`, a convenience), and
//! slipway/postgres:15 (Postgres with pgBackRest) and slipway/nats:2.9 (NATS with JetStream),
//! the same in every project; prints each image's size, and for the project's images the size
//! the same binary would make on Debian slim, as a ratio.

use anyhow::{Context, bail};
use tokio::process::Command;

/// Every deployable, as named by its Dockerfile target.
const TARGETS: [&str; 5] = ["auth", "mailer", "web", "gateway", "slipway"];

pub async fn run(tag: Option<String>) -> anyhow::Result<()> {
    std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .context("cannot enter the workspace")?;
    let tag = match tag {
        Some(t) => t,
        None => commit_tag().await?,
    };
    // The base every target shares, to tell each image's own layer from it, and Debian slim's
    // size: each image is printed next to the same binary on Debian slim (the base the images
    // had before), as a ratio.
    let base = format!("{}/runtime-base:{tag}", project::IMAGES);
    build(&["--target", "runtime", "-t", &base, "."], "--target runtime").await?;
    let base_bytes = bytes(&base).await?;
    let slim_bytes = bytes("debian:bookworm-slim").await?;
    let mut rows = Vec::new();
    for target in TARGETS {
        let image = format!("{}/{target}:{tag}", project::IMAGES);
        let latest = format!("{}/{target}:latest", project::IMAGES);
        let started = std::time::Instant::now();
        build(&["--target", target, "-t", &image, "-t", &latest, "."], &format!("--target {target}")).await?;
        let size = bytes(&image).await?;
        let on_slim = slim_bytes + size.saturating_sub(base_bytes);
        rows.push(format!(
            "{image:<40} {:>8.1} MB   on Debian slim {:>6.1} MB ({:.2}x)   built in {:.1?}",
            mb(size),
            mb(on_slim),
            size as f64 / on_slim as f64,
            started.elapsed()
        ));
    }
    let _ = output(&["image", "rm", &base]).await;
    // Postgres with pgBackRest (docker-compose.backup.yml) and NATS with JetStream
    // (docker-compose.nats.yml), tagged by their major version, not the commit: a deploy
    // replaces them only when their image changes.
    for (image, context) in [("slipway/postgres:15", "docker/postgres"), ("slipway/nats:2.9", "docker/nats")]
    {
        let started = std::time::Instant::now();
        build(&["-t", image, context], context).await?;
        rows.push(format!(
            "{image:<40} {:>8.1} MB   built in {:.1?}",
            mb(bytes(image).await?),
            started.elapsed()
        ));
    }
    println!("\n{}", rows.join("\n"));
    Ok(())
}

/// The commit's short hash, with `-dirty` when the work tree has changes: a tag never names
/// two different builds of a clean commit.
async fn commit_tag() -> anyhow::Result<String> {
    let head = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().await?;
    if !head.status.success() {
        bail!("not a git checkout: give the tag with --tag");
    }
    let mut tag = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let dirty = Command::new("git").args(["status", "--porcelain"]).output().await?;
    if !dirty.stdout.is_empty() {
        tag.push_str("-dirty");
    }
    Ok(tag)
}

/// `docker build ARGS` with BuildKit, its output on the terminal; a failure names `what`.
async fn build(args: &[&str], what: &str) -> anyhow::Result<()> {
    let status = Command::new("docker")
        .env("DOCKER_BUILDKIT", "1")
        .arg("build")
        .args(args)
        .status()
        .await
        .context("cannot run docker (install Docker Engine)")?;
    if !status.success() {
        bail!("docker build {what} failed (its output is above)");
    }
    Ok(())
}

/// An image's size in bytes.
async fn bytes(image: &str) -> anyhow::Result<u64> {
    let size = output(&["image", "inspect", "-f", "{{.Size}}", image]).await?;
    size.parse().with_context(|| format!("the size of {image}: {size:?}"))
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

async fn output(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker").args(args).output().await?;
    if !out.status.success() {
        bail!("docker {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
