//! `slipway up`: the compose stack on the local Docker engine, with the two things compose
//! cannot work out itself — the secret files in `./secrets/` (made where missing) and the
//! group that may use the engine's socket (docker-proxy's non-root user needs it).

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use crate::Failure;

pub async fn run(extra: &[String]) -> Result<(), Failure> {
    if !Path::new("docker-compose.yml").exists() {
        return Err(anyhow::anyhow!(
            "no docker-compose.yml in this folder: run `slipway up` from the project's root"
        )
        .into());
    }
    crate::doctor::check_for_up().await?;
    crate::env::write_missing_secret_files(Path::new("secrets"))?;
    let mut compose = std::process::Command::new("docker");
    compose.args(["compose", "up", "-d", "--wait", "--build"]).args(extra);
    pass_socket_group(&mut compose);
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

/// Passes `DOCKER_GID`, the group of the engine's socket (`DOCKER_HOST`'s unix socket, or
/// /var/run/docker.sock), unless it is set already: docker-proxy runs in that group.
pub(crate) fn pass_socket_group(cmd: &mut std::process::Command) {
    if std::env::var_os("DOCKER_GID").is_some() {
        return;
    }
    let socket = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(str::to_string))
        .unwrap_or_else(|| "/var/run/docker.sock".into());
    match std::fs::metadata(&socket) {
        Ok(meta) => {
            cmd.env("DOCKER_GID", meta.gid().to_string());
        }
        Err(e) => eprintln!(
            "slipway: cannot read {socket} ({e}); set DOCKER_GID to the group of the engine's socket \
             (docker-proxy, which discovery reads through, runs in it)"
        ),
    }
}
