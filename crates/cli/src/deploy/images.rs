//! Getting a release's images onto a destination's engine: streamed over the engine's own
//! connection (`docker save | docker load`), and only those it lacks.

use std::process::Stdio;
use std::time::Instant;

use tokio::process::Command;

use super::Destination;
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

/// Ships every image the destination lacks (or holds under the tag with other contents);
/// returns each image with its id.
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
            println!("  {image}: already on {}", dest.name);
            shipped.push((image.clone(), id));
            continue;
        }
        let started = Instant::now();
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
        println!("  {image}: shipped to {} in {:.1?}", dest.name, started.elapsed());
        shipped.push((image.clone(), id));
    }
    Ok(shipped)
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
