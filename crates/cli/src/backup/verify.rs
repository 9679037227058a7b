//! `slipway backup verify`: the restore drill, run by the backup service's own
//! `slipway-backup verify` (the one its schedule runs daily), given the migrations this build
//! of the CLI carries, so a backup is checked against the code and not only against the live
//! database it came from.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use super::Service;
use crate::Failure;
use crate::registry::SERVICES;

/// `schema version checksum-hex`, one line per up migration of every schema the services
/// migrate: what the drill expects each restored `schema_migrations` table to hold.
fn expected() -> String {
    let mut lines = Vec::new();
    let mut seen = Vec::new();
    for entry in SERVICES {
        for m in entry.migrations() {
            if seen.contains(&m.schema().to_string()) {
                continue;
            }
            seen.push(m.schema().to_string());
            for (version, checksum) in m.recorded() {
                lines.push(format!("{} {version} {checksum}", m.schema()));
            }
        }
    }
    lines.sort();
    lines.join("\n") + "\n"
}

pub async fn run(service: &Service) -> Result<(), Failure> {
    let mut cmd = service.engine.docker();
    cmd.args(["exec", "--interactive", &service.container, "slipway-backup", "verify", "--expect", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child =
        cmd.spawn().map_err(|e| Failure::Failed(anyhow::anyhow!("cannot run `docker exec`: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(expected().as_bytes()).await;
    }
    println!("restore drill on {}:", service.place);
    let mut failed = None;
    if let Some(stdout) = child.stdout.take() {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            println!("  {line}");
            if let Some(check) = line.strip_prefix("FAILED ") {
                failed = Some(check.to_string());
            }
        }
    }
    let out =
        child.wait_with_output().await.map_err(|e| Failure::Failed(anyhow::anyhow!("docker exec: {e}")))?;
    match failed {
        None if out.status.success() => Ok(()),
        Some(check) => Err(Failure::Failed(anyhow::anyhow!(
            "the restore drill failed at {check}\n(the backup service is unhealthy until a drill or backup passes; \
             `slipway backup list` shows the repository)"
        ))),
        None => Err(Failure::Failed(anyhow::anyhow!(
            "the restore drill could not run on {}: {}",
            service.place,
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}
