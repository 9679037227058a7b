//! A service's secrets on the destination: a volume of its own, filled from the deployer's
//! secret files through the engine's archive API (`docker cp` from standard input), so a value
//! is never on a command line, in an environment, an image layer or a log line.

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
            let out = dest.engine.output(args).await?;
            if out.status.success() { Ok(()) } else { Err(super::engine_failure(dest, what, &out.stderr)) }
        };
        docker(
            &["volume", "create", "--label", "slipway.secrets=true", &volume],
            "creating a secrets volume",
        )
        .await?;
        let _ = dest.engine.output(&["rm", "--force", &helper]).await;
        let mount = format!("{volume}:/secrets");
        let image = format!("{}/slipway:{tag}", project::IMAGES);
        docker(
            &["create", "--name", &helper, "--network", "none", "--volume", &mount, &image],
            "creating a helper",
        )
        .await?;
        let copied =
            super::archive::copy_in(dest, &format!("{helper}:/secrets"), &archive, "storing secrets").await;
        let _ = dest.engine.output(&["rm", "--force", &helper]).await;
        copied?;
        super::report::step(
            "secrets",
            serde_json::json!({ "service": service, "count": names.len() }),
            format!("{service}: {} secret(s) in volume {volume}", names.len()),
        );
    }
    Ok(())
}

/// A tar archive of the named secret files from the destination's secrets folder, each
/// readable (0444) in a volume only its service mounts, as Docker's own secrets are.
fn archive(dest: &Destination, names: &[String]) -> Result<Vec<u8>, Failure> {
    let mut files = Vec::new();
    for name in names {
        let path = dest.secrets.join(name);
        let value = std::fs::read(&path).map_err(|e| {
            Failure::Failed(anyhow::anyhow!(
                "cannot read the secret {} ({e}): `slipway env secrets --files {}` writes the missing ones",
                path.display(),
                dest.secrets.display()
            ))
        })?;
        files.push((name.as_str(), value));
    }
    super::archive::archive(files.iter().map(|(n, v)| (*n, v.as_slice())), 0o444)
}
