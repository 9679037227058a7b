//! `slipway up`: the compose stack on the local Docker engine, with the two things compose
//! cannot work out itself — a `secrets.env` (made if missing) and the group that may read the
//! engine's socket (the gateway's non-root user needs it for discovery).

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use crate::Failure;

pub fn run(extra: &[String]) -> Result<(), Failure> {
    if !Path::new("docker-compose.yml").exists() {
        return Err(anyhow::anyhow!(
            "no docker-compose.yml in this folder: run `slipway up` from the project's root"
        )
        .into());
    }
    if !Path::new("secrets.env").exists() {
        crate::env::secrets(Path::new("."))?;
    }
    let mut compose = std::process::Command::new("docker");
    compose.args(["compose", "up", "-d", "--wait", "--build"]).args(extra);
    if std::env::var_os("DOCKER_GID").is_none() {
        let socket = std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|h| h.strip_prefix("unix://").map(str::to_string))
            .unwrap_or_else(|| "/var/run/docker.sock".into());
        match std::fs::metadata(&socket) {
            Ok(meta) => {
                compose.env("DOCKER_GID", meta.gid().to_string());
            }
            Err(e) => eprintln!(
                "slipway: cannot read {socket} ({e}); the gateway will not see containers \
                 unless DOCKER_GID names the socket's group"
            ),
        }
    }
    let status = compose.status().map_err(|e| {
        anyhow::anyhow!("cannot run `docker compose` ({e}): install Docker Engine with the compose plugin")
    })?;
    if !status.success() {
        return Err(anyhow::anyhow!(
            "docker compose up failed (its output is above; `docker compose logs <service>` shows why a service stopped)"
        )
        .into());
    }
    println!(
        "slipway: up — the site: http://127.0.0.1:8080  the dev mailbox: http://127.0.0.1:8080/dev/mail  \
         the gateway's admin page: http://127.0.0.1:9090"
    );
    Ok(())
}
