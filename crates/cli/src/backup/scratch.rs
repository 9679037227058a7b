//! Containers that work on a repository the way the backup service does: its image, its
//! `PGBACKREST_*` settings, its secrets copied in through the engine's archive API (never on
//! a command line or in an environment), and the repository, read-only: the `backups` volume
//! (with no network at all), or object storage (on the service's network, with its host
//! entries and its bind-mounted files such as a CA certificate).

use serde_json::Value;

use super::Service;
use super::restore::docker;
use crate::Failure;

/// The settings pgBackRest reads from a file, the slipway-pgbackrest wrapper's `_FILE` forms.
const SECRETS: [&str; 3] = [
    "PGBACKREST_REPO1_CIPHER_PASS_FILE",
    "PGBACKREST_REPO1_S3_KEY_FILE",
    "PGBACKREST_REPO1_S3_KEY_SECRET_FILE",
];

/// What the scratch containers take from the backup service.
pub(super) struct Setup {
    pub image: String,
    env: Vec<String>,
    /// (setting, path in the backup service, contents) of each secret file, read while the
    /// service runs (`--in-place` stops it before the restore needs them).
    secrets: Vec<(String, String, Vec<u8>)>,
    /// Options that give a container access to the repository.
    access: Vec<String>,
}

fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

pub(super) async fn setup(service: &Service) -> Result<Setup, Failure> {
    let inspected =
        docker(service, &["inspect", &service.container], "inspecting the backup service").await?;
    let c: Value = serde_json::from_str::<Value>(&inspected).unwrap_or_default()[0].clone();
    let mut env = Vec::new();
    let mut secrets = Vec::new();
    for e in strings(&c["Config"]["Env"]).filter(|e| e.starts_with("PGBACKREST_")) {
        match e.split_once('=') {
            Some((key, path)) if SECRETS.contains(&key) => {
                secrets.push((key.to_string(), path.to_string(), read_secret(service, path).await?));
            }
            _ if e.starts_with("PGBACKREST_REPO1_CIPHER_PASS=")
                || e.starts_with("PGBACKREST_REPO1_S3_KEY") => {}
            _ => env.push(e.to_string()),
        }
    }
    let mounts: Vec<&Value> = c["Mounts"].as_array().into_iter().flatten().collect();
    let mut access = Vec::new();
    if env.iter().any(|e| e == "PGBACKREST_REPO1_TYPE=s3") {
        let network = c["NetworkSettings"]["Networks"].as_object().and_then(|n| n.keys().next().cloned());
        access.extend(["--network".to_string(), network.unwrap_or_else(|| "bridge".into())]);
        for host in strings(&c["HostConfig"]["ExtraHosts"]) {
            access.extend(["--add-host".to_string(), host.to_string()]);
        }
        for m in mounts.iter().filter(|m| m["Type"] == "bind") {
            let (Some(from), Some(to)) = (m["Source"].as_str(), m["Destination"].as_str()) else { continue };
            if !to.starts_with("/run/secrets") {
                access.extend(["--volume".to_string(), format!("{from}:{to}:ro")]);
            }
        }
    } else {
        let repository = mounts
            .iter()
            .find(|m| m["Destination"] == "/var/lib/pgbackrest")
            .and_then(|m| m["Name"].as_str())
            .ok_or_else(|| Failure::Failed(anyhow::anyhow!("the backup service has no repository volume")))?;
        access.extend(["--network", "none", "--volume"].map(String::from));
        access.push(format!("{repository}:/var/lib/pgbackrest:ro"));
    }
    Ok(Setup {
        image: c["Config"]["Image"].as_str().unwrap_or("slipway/postgres:15").to_string(),
        env,
        secrets,
        access,
    })
}

/// A secret file of the running backup service, read there with `cat`: not through the
/// archive API (`docker cp`), which sees an empty placeholder where Swarm mounts a secret.
async fn read_secret(service: &Service, path: &str) -> Result<Vec<u8>, Failure> {
    let key = service.engine.output(&["exec", &service.container, "cat", path]).await?;
    if !key.status.success() || key.stdout.is_empty() {
        return Err(Failure::Failed(anyhow::anyhow!(
            "the backup service has no secret at {path}: {}",
            String::from_utf8_lossy(&key.stderr).trim()
        )));
    }
    Ok(key.stdout)
}

/// Creates a container with the backup service's settings and access to the repository,
/// `volume` as its data directory, from `rest` (options, the image, its command), and copies
/// the secrets into its /tmp through the archive API.
pub(super) async fn create(
    service: &Service,
    setup: &Setup,
    name: &str,
    volume: &str,
    rest: &[&str],
) -> Result<(), Failure> {
    let mut args: Vec<String> = ["create", "--name", name, "--volume"].map(String::from).to_vec();
    args.push(format!("{volume}:/var/lib/postgresql/data"));
    args.extend(setup.access.iter().cloned());
    for e in &setup.env {
        args.extend(["--env".to_string(), e.clone()]);
    }
    let file = |path: &str| path.rsplit('/').next().unwrap_or(path).to_string();
    for (key, path, _) in &setup.secrets {
        args.extend(["--env".to_string(), format!("{key}=/tmp/{}", file(path))]);
    }
    args.extend(rest.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker(service, &args, "creating a restore container").await?;
    if setup.secrets.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = setup.secrets.iter().map(|(_, path, _)| file(path)).collect();
    let files =
        names.iter().zip(&setup.secrets).map(|(n, (_, _, contents))| (n.as_str(), contents.as_slice()));
    let tar = crate::deploy::archive(files, 0o444)?;
    if let Some(said) = crate::deploy::copy_in(&service.engine, &format!("{name}:/tmp"), &tar).await? {
        return Err(Failure::Failed(anyhow::anyhow!(
            "copying the secrets into {name} failed on {}: {}",
            service.place,
            String::from_utf8_lossy(&said).trim()
        )));
    }
    Ok(())
}

/// `pgbackrest restore options…` in a throwaway container `name` on `volume` (its data
/// directory), which is removed afterwards whatever happened.
pub(super) async fn pgbackrest_restore(
    service: &Service,
    setup: &Setup,
    name: &str,
    volume: &str,
    options: &[&str],
) -> Result<(), Failure> {
    let mut args = vec!["--user", "postgres", "--entrypoint", "slipway-pgbackrest", &setup.image];
    args.extend(["restore", "--log-level-console=warn"]);
    args.extend(options);
    let restored = async {
        create(service, setup, name, volume, &args).await?;
        docker(service, &["start", "--attach", name], "restoring (pgbackrest restore)").await
    }
    .await;
    let _ = docker(service, &["rm", "--force", name], "removing the restore container").await;
    restored.map(|_| ())
}
