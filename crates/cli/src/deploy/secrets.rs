//! A service's secrets on the destination: a volume of its own, filled from the deployer's
//! secret files through the engine's archive API (`docker cp` from standard input), so a value
//! is never on a command line, in an environment, an image layer or a log line.

use std::process::Stdio;

use tokio::io::AsyncWriteExt as _;

use super::Destination;
use super::compose::Model;
use crate::Failure;

/// Writes each service's secrets into its volume (created if missing), over the old values:
/// a deploy with a new secret file rotates it.
pub async fn store(dest: &Destination, model: &Model, tag: &str) -> Result<(), Failure> {
    for (service, names) in &model.secrets {
        let archive = archive(dest, names)?;
        let volume = model.secrets_volume(service);
        let helper = format!("{}-secrets-{service}", model.project);
        let docker = async |args: &[&str], what: &str| -> Result<(), Failure> {
            let out =
                dest.engine.docker().args(args).output().await.map_err(|e| anyhow::anyhow!("docker: {e}"))?;
            if out.status.success() { Ok(()) } else { Err(super::engine_failure(dest, what, &out.stderr)) }
        };
        docker(
            &["volume", "create", "--label", "slipway.secrets=true", &volume],
            "creating a secrets volume",
        )
        .await?;
        let _ = dest.engine.docker().args(["rm", "--force", &helper]).output().await;
        let mount = format!("{volume}:/secrets");
        let image = format!("slipway/slipway:{tag}");
        docker(
            &["create", "--name", &helper, "--network", "none", "--volume", &mount, &image],
            "creating a helper",
        )
        .await?;
        let copied = copy_in(dest, &helper, &archive).await;
        let _ = dest.engine.docker().args(["rm", "--force", &helper]).output().await;
        copied?;
        println!("  {service}: {} secret(s) in volume {volume}", names.len());
    }
    Ok(())
}

/// A tar archive of the named secret files from the destination's secrets folder, each
/// readable (0444) in a volume only its service mounts, as Docker's own secrets are.
fn archive(dest: &Destination, names: &[String]) -> Result<Vec<u8>, Failure> {
    let mut tar = tar::Builder::new(Vec::new());
    for name in names {
        let path = dest.secrets.join(name);
        let value = std::fs::read(&path).map_err(|e| {
            Failure::Failed(anyhow::anyhow!(
                "cannot read the secret {} ({e}): `slipway env secrets --files {}` writes the missing ones",
                path.display(),
                dest.secrets.display()
            ))
        })?;
        let mut header = tar::Header::new_gnu();
        header.set_size(value.len() as u64);
        header.set_mode(0o444);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, value.as_slice()).map_err(|e| anyhow::anyhow!("tar: {e}"))?;
    }
    Ok(tar.into_inner().map_err(|e| anyhow::anyhow!("tar: {e}"))?)
}

/// `docker cp - helper:/secrets`, the archive on standard input (files owned by root).
async fn copy_in(dest: &Destination, helper: &str, archive: &[u8]) -> Result<(), Failure> {
    let target = format!("{helper}:/secrets");
    let mut child = dest
        .engine
        .docker()
        .args(["cp", "-", &target])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("docker cp: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(archive).await.map_err(|e| anyhow::anyhow!("docker cp: {e}"))?;
    }
    let out = child.wait_with_output().await.map_err(|e| anyhow::anyhow!("docker cp: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(super::engine_failure(dest, "storing secrets", &out.stderr))
    }
}
