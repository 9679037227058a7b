//! Getting a release's images onto a destination's engine, only those it lacks: through the
//! destination's registry (pushed here, pulled there), or streamed over the engine's own
//! connection (`docker save | docker load`); and pruning those of old releases.

use std::process::Stdio;
use std::time::Instant;

use tokio::process::Command;

use serde_json::json;

use super::{Destination, report};
use crate::Failure;

/// An image's id on this machine, or `None` if it has no such image.
async fn local_id(image: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .output()
        .await
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Ships every image the destination lacks (or holds under the tag with other contents),
/// through the destination's registry if it has one; returns each image with its id.
pub async fn ship(dest: &Destination, images: &[String]) -> Result<Vec<(String, String)>, Failure> {
    let mut shipped = Vec::new();
    for image in images {
        let Some(id) = local_id(image).await else {
            return Err(Failure::Failed(anyhow::anyhow!(
                "image {image} is not on this machine: build the release first (`cargo xtask images` \
                 tags Slipway's images with the git commit), or pull it"
            )));
        };
        let there = dest.engine.output(&["image", "inspect", "--format", "{{.Id}}", image]).await;
        if there.is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == id) {
            report::step(
                "image",
                json!({ "image": image, "how": "already there" }),
                format!("{image}: already on {}", dest.name),
            );
            shipped.push((image.clone(), id));
            continue;
        }
        let started = Instant::now();
        if let Some(registry) = &dest.registry {
            through_registry(dest, registry, image).await?;
            report::step(
                "image",
                json!({ "image": image, "how": "registry", "seconds": started.elapsed().as_secs_f64() }),
                format!(
                    "{image}: pushed to {registry} and pulled by {} in {:.1?}",
                    dest.name,
                    started.elapsed()
                ),
            );
            shipped.push((image.clone(), id));
            continue;
        }
        let mut save = Command::new("docker")
            .args(["save", image])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Failure::Failed(anyhow::anyhow!("cannot run `docker save`: {e}")))?;
        let stream: Stdio = save
            .stdout
            .take()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| Failure::Failed(anyhow::anyhow!("cannot stream `docker save`")))?;
        let load = dest.engine.docker().arg("load").arg("--quiet").stdin(stream).output().await;
        let saved = save.wait().await;
        let load = load.map_err(|e| Failure::Failed(anyhow::anyhow!("cannot run `docker load`: {e}")))?;
        if !load.status.success() || !saved.is_ok_and(|s| s.success()) {
            return Err(super::engine_failure(dest, &format!("shipping {image}"), &load.stderr));
        }
        report::step(
            "image",
            json!({ "image": image, "how": "streamed", "seconds": started.elapsed().as_secs_f64() }),
            format!("{image}: shipped to {} in {:.1?}", dest.name, started.elapsed()),
        );
        shipped.push((image.clone(), id));
    }
    Ok(shipped)
}

/// One image through a registry: tagged `registry/image` and pushed from this machine, pulled
/// by the destination and tagged there under the name the compose files use. A registry that
/// needs a login needs `docker login` on both sides first.
async fn through_registry(dest: &Destination, registry: &str, image: &str) -> Result<(), Failure> {
    let remote = format!("{registry}/{image}");
    let local = async |args: &[&str]| -> Result<(), Failure> {
        let out = Command::new("docker")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| Failure::Failed(anyhow::anyhow!("cannot run `docker`: {e}")))?;
        if out.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&out.stderr);
        let said = said.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("no answer").trim().to_string();
        Err(Failure::Failed(anyhow::anyhow!("`docker {}` failed on this machine: {said}", args.join(" "))))
    };
    local(&["tag", image, &remote]).await?;
    let pushed = local(&["push", "--quiet", &remote]).await;
    let _ = local(&["image", "rm", &remote]).await;
    pushed.map_err(|e| Failure::Failed(anyhow::anyhow!("pushing {image} to {registry}: {e}")))?;
    for args in [&["pull", "--quiet", &remote][..], &["tag", &remote, image], &["image", "rm", &remote]] {
        let out = dest.engine.output(args).await?;
        if !out.status.success() {
            return Err(super::engine_failure(dest, &format!("`docker {}`", args.join(" ")), &out.stderr));
        }
    }
    Ok(())
}

/// Each image with its id on the destination, which must still have them all (a rollback
/// ships nothing).
pub async fn on_host(dest: &Destination, images: &[String]) -> Result<Vec<(String, String)>, Failure> {
    let mut found = Vec::new();
    for image in images {
        let out = dest.engine.output(&["image", "inspect", "--format", "{{.Id}}", image]).await;
        match out {
            Ok(o) if o.status.success() => {
                found.push((image.clone(), String::from_utf8_lossy(&o.stdout).trim().to_string()));
            }
            _ => {
                return Err(Failure::Failed(anyhow::anyhow!(
                    "{image} is no longer on {}: deploy that release instead (`slipway deploy {} --tag …`)",
                    dest.name,
                    dest.name
                )));
            }
        }
    }
    Ok(found)
}

/// Releases whose images a destination keeps (for rollbacks): the last five that went live.
pub const KEPT_RELEASES: usize = 5;

/// Removes from the destination the images of every release but `kept` ones, for each
/// repository the release `tag` runs (`images`); an image still in use stays (the engine
/// refuses to remove it). Says how many went.
pub async fn prune(dest: &Destination, images: &[String], tag: &str, kept: &[&str]) {
    let suffix = format!(":{tag}");
    let repos: Vec<&str> = images.iter().filter_map(|i| i.strip_suffix(&suffix)).collect();
    if repos.is_empty() {
        return;
    }
    let mut args = vec!["images".to_string(), "--format".into(), "{{.Repository}}:{{.Tag}}".into()];
    repos.iter().for_each(|r| args.extend(["--filter".into(), format!("reference={r}")]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let Ok(listed) = dest.engine.output(&args).await else { return };
    let stale: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|image| {
            image.rsplit_once(':').is_some_and(|(repo, t)| {
                repos.contains(&repo) && t != tag && t != "<none>" && !kept.contains(&t)
            })
        })
        .map(str::to_string)
        .collect();
    if stale.is_empty() {
        return;
    }
    let stale: Vec<&str> = stale.iter().map(String::as_str).collect();
    let removed = dest.engine.output(&[&["image", "rm"][..], &stale].concat()).await;
    let gone = removed
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().filter(|l| l.starts_with("Untagged:")).count());
    let gone = gone.unwrap_or(0);
    report::step(
        "prune",
        json!({ "removed": gone }),
        format!("images: {gone} of releases before the last {KEPT_RELEASES} removed from {}", dest.name),
    );
}
