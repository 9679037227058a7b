//! The destination's compose files: read here (the deployer's machine), run there.
//!
//! Compose's file secrets are bind mounts of files on the engine's host, which a remote host
//! does not have; so a deploy keeps each service's secrets in a volume of its own on the
//! destination (`secrets`) and lays an overlay over the files that mounts that volume at
//! /run/secrets in place of the file secrets. The `_FILE` variables read the same paths.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tokio::process::Command;

use super::Destination;
use crate::Failure;

/// What a deploy needs to know of the resolved compose model.
#[derive(Debug)]
pub struct Model {
    /// The compose project's name: containers and volumes are named after it.
    pub project: String,
    /// Each service that has secrets, and their names.
    pub secrets: BTreeMap<String, Vec<String>>,
    /// Every image the services run.
    pub images: Vec<String>,
}

impl Model {
    /// The volume holding a service's secrets on the destination.
    pub fn secrets_volume(&self, service: &str) -> String {
        format!("{}_secrets_{service}", self.project)
    }
}

/// Compose with the destination's files and the release's variables, run here (for `config`)
/// or against the destination's engine (`remote`).
fn compose(dest: &Destination, tag: &str, docker_gid: &str, remote: bool) -> Command {
    let mut cmd = if remote {
        dest.engine.compose()
    } else {
        let mut c = Command::new("docker");
        c.arg("compose");
        c
    };
    for file in &dest.files {
        cmd.arg("--file").arg(file);
    }
    cmd.env("SLIPWAY_TAG", tag)
        .env("SLIPWAY_PUBLIC_URL", &dest.public_url)
        .env("SLIPWAY_HTTP_PUBLISH", &dest.publish)
        .env("DOCKER_GID", docker_gid);
    cmd
}

/// The resolved model (`docker compose config`), which also checks the files.
pub async fn model(dest: &Destination, tag: &str) -> Result<Model, Failure> {
    let out = compose(dest, tag, "0", false)
        .args(["config", "--format", "json"])
        .output()
        .await
        .map_err(|e| Failure::Failed(anyhow::anyhow!("cannot run `docker compose`: {e}")))?;
    if !out.status.success() {
        return Err(Failure::Failed(anyhow::anyhow!(
            "the compose files of {} do not resolve: {}",
            dest.name,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| Failure::Failed(anyhow::anyhow!("`docker compose config` printed no JSON: {e}")))?;
    let project = v["name"].as_str().unwrap_or("slipway").to_string();
    let mut secrets = BTreeMap::new();
    let mut images = Vec::new();
    for (service, def) in v["services"].as_object().into_iter().flatten() {
        if let Some(image) = def["image"].as_str()
            && !images.iter().any(|i| i == image)
        {
            images.push(image.to_string());
        }
        let names: Vec<String> = def["secrets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["source"].as_str().map(str::to_string))
            .collect();
        if !names.is_empty() {
            secrets.insert(service.clone(), names);
        }
    }
    Ok(Model { project, secrets, images })
}

/// The overlay that swaps each service's file secrets for its secrets volume.
pub fn overlay(model: &Model) -> Result<PathBuf, Failure> {
    let mut services = String::from("services:\n");
    let mut volumes = String::from("volumes:\n");
    for service in model.secrets.keys() {
        let volume = model.secrets_volume(service);
        services.push_str(&format!(
            "  {service}:\n    secrets: !reset []\n    volumes:\n      - {{ type: volume, source: {volume}, \
             target: /run/secrets, read_only: true }}\n"
        ));
        volumes.push_str(&format!("  {volume}: {{ external: true, name: {volume} }}\n"));
    }
    let path = std::env::temp_dir().join(format!("slipway-deploy-{}.yml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, format!("# Made by `slipway deploy`.\n{services}{volumes}"))
        .map_err(|e| Failure::Failed(anyhow::anyhow!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// `up -d --wait` on the destination; on failure, says which services did not come up,
/// with their last health-check output and log lines.
pub async fn up(
    dest: &Destination,
    model: &Model,
    tag: &str,
    docker_gid: &str,
    overlay: &std::path::Path,
) -> Result<(), Failure> {
    let timeout = dest.health_timeout.as_secs().max(1).to_string();
    let out = compose(dest, tag, docker_gid, true)
        .arg("--file")
        .arg(overlay)
        .args(["up", "--detach", "--wait", "--wait-timeout", &timeout, "--no-build", "--pull", "never"])
        .args(["--remove-orphans"])
        .output()
        .await
        .map_err(|e| Failure::Failed(anyhow::anyhow!("cannot run `docker compose`: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    let last = said.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
    let mut message =
        format!("the release {tag} did not come up healthy on {} within {timeout} s ({last})", dest.name);
    for problem in unhealthy(dest, &model.project).await {
        message.push_str(&format!("\n\n{problem}"));
    }
    Err(Failure::Failed(anyhow::anyhow!(message)))
}

/// Each container of the project that is not running healthy: its name and state, its last
/// health-check output, and its last log lines.
async fn unhealthy(dest: &Destination, project: &str) -> Vec<String> {
    let filter = format!("label=com.docker.compose.project={project}");
    let Ok(list) = dest
        .engine
        .docker()
        .args(["ps", "--all", "--filter", &filter, "--format", "{{.Names}}\t{{.Status}}"])
        .output()
        .await
    else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for line in String::from_utf8_lossy(&list.stdout).lines() {
        let (name, status) = line.split_once('\t').unwrap_or((line, ""));
        let fine = status.contains("(healthy)")
            || (status.starts_with("Up") && !status.contains("health"))
            || (status.starts_with("Exited (0)") && name.contains("migrate"));
        if fine {
            continue;
        }
        let health = dest
            .engine
            .docker()
            .args([
                "inspect",
                "--format",
                "{{if .State.Health}}{{range .State.Health.Log}}{{.Output}}{{end}}{{end}}",
                name,
            ])
            .output()
            .await
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().lines().last().unwrap_or("").to_string())
            .unwrap_or_default();
        let logs = dest
            .engine
            .docker()
            .args(["logs", "--tail", "15", name])
            .output()
            .await
            .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
            .unwrap_or_default();
        let mut text = format!("{name}: {status}");
        if !health.is_empty() {
            text.push_str(&format!("\n  last health check: {health}"));
        }
        text.push_str("\n  last log lines:");
        for l in logs.lines() {
            text.push_str(&format!("\n    {l}"));
        }
        found.push(text);
    }
    found
}

/// The group of the destination's engine socket (docker-proxy runs in it), read by a
/// throwaway container of the release's CLI image.
pub async fn socket_group(dest: &Destination, tag: &str) -> Result<String, Failure> {
    let image = format!("slipway/slipway:{tag}");
    let out = dest
        .engine
        .docker()
        .args(["run", "--rm", "--network", "none", "--user", "0", "--entrypoint", "stat"])
        .args([
            "--volume",
            "/var/run/docker.sock:/var/run/docker.sock:ro",
            &image,
            "-c",
            "%g",
            "/var/run/docker.sock",
        ])
        .output()
        .await
        .map_err(|e| Failure::Failed(anyhow::anyhow!("cannot run docker: {e}")))?;
    if !out.status.success() {
        return Err(super::engine_failure(dest, "reading the group of its Docker socket", &out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
