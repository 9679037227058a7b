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
use super::ports::Holder;
use super::rotate::Database;
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
    /// How each service is brought to the new release, in name order.
    pub services: Vec<Service>,
    /// The database whose owner's password follows its secret file, if the stack has one.
    pub database: Option<Database>,
}

/// One service of the model, as a deploy sees it.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub switch: Switch,
    /// `deploy.replicas`, or 1.
    pub replicas: usize,
    /// The gateway route it serves (`slipway.route`, or the service's name) when it has
    /// `slipway.path`, `slipway.host` or `slipway.port`: a new instance must be in rotation
    /// there before an old one stops.
    pub route: Option<String>,
    /// The container holding its ports while it is replaced (the gateway's; see [`super::ports`]).
    pub holder: Option<Holder>,
}

/// How a deploy replaces a service's containers (the `slipway.deploy` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// `restart: "no"`: run to completion before anything is switched (the migrations).
    OneShot,
    /// `slipway.deploy: blue-green`: new containers beside the old, old ones stopped once the
    /// new are healthy (and in rotation).
    BlueGreen,
    /// `slipway.deploy: last`: replaced in place after everything else (the gateway).
    Last,
    /// Anything else (Postgres, docker-proxy): replaced in place only when changed.
    InPlace,
}

impl Model {
    /// The volume holding a service's secrets on the destination.
    pub fn secrets_volume(&self, service: &str) -> String {
        format!("{}_secrets_{service}", self.project)
    }
}

/// Compose with the destination's files and the release's variables.
fn with_files(mut cmd: Command, dest: &Destination, tag: &str, docker_gid: &str) -> Command {
    for file in &dest.files {
        cmd.arg("--file").arg(file);
    }
    cmd.env("SLIPWAY_TAG", tag)
        .env("SLIPWAY_PUBLIC_URL", &dest.public_url)
        .env("SLIPWAY_HTTP_PUBLISH", &dest.publish)
        .env("DOCKER_GID", docker_gid);
    cmd
}

/// The compose command of one deploy: the destination's files with the secrets overlay and
/// the release's variables, against the destination's engine.
#[derive(Debug)]
pub struct Compose<'a> {
    pub dest: &'a Destination,
    pub project: String,
    tag: String,
    docker_gid: String,
    overlay: PathBuf,
}

impl<'a> Compose<'a> {
    pub fn new(
        dest: &'a Destination,
        model: &Model,
        tag: &str,
        docker_gid: String,
        overlay: PathBuf,
    ) -> Self {
        Self { dest, project: model.project.clone(), tag: tag.to_string(), docker_gid, overlay }
    }

    pub fn command(&self) -> Command {
        let mut cmd = with_files(self.dest.engine.compose(), self.dest, &self.tag, &self.docker_gid);
        cmd.arg("--file").arg(&self.overlay);
        cmd
    }

    /// Runs `docker compose args…`; on failure, says `what` failed with compose's last words.
    pub async fn run(&self, args: &[&str], what: &str) -> Result<(), Failure> {
        self.output(args, what).await.map(drop)
    }

    /// Runs `docker compose args…` and returns what it printed; on failure, says `what` failed
    /// with compose's last words.
    pub async fn output(&self, args: &[&str], what: &str) -> Result<String, Failure> {
        let out = self
            .command()
            .args(args)
            .output()
            .await
            .map_err(|e| Failure::Failed(anyhow::anyhow!("cannot run `docker compose`: {e}")))?;
        let said =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if out.status.success() {
            return Ok(said);
        }
        let tail: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(12)..].join("\n  ");
        Err(Failure::Failed(anyhow::anyhow!("{what} failed on {}:\n  {tail}", self.dest.name)))
    }

    /// The ids of a service's running containers.
    pub async fn containers(&self, service: &str) -> Result<Vec<String>, Failure> {
        self.running(Some(service)).await
    }

    /// Whether any container of the project runs (a first deploy finds none).
    pub async fn any_running(&self) -> Result<bool, Failure> {
        Ok(!self.running(None).await?.is_empty())
    }

    async fn running(&self, service: Option<&str>) -> Result<Vec<String>, Failure> {
        let mut args = vec!["ps".to_string(), "--quiet".into(), "--no-trunc".into(), "--filter".into()];
        args.push(format!("label=com.docker.compose.project={}", self.project));
        if let Some(service) = service {
            args.extend(["--filter".into(), format!("label=com.docker.compose.service={service}")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.dest.engine.output(&args).await?;
        if !out.status.success() {
            return Err(super::engine_failure(self.dest, "listing containers", &out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect())
    }
}

/// The resolved model (`docker compose config`), which also checks the files.
pub async fn model(dest: &Destination, tag: &str) -> Result<Model, Failure> {
    let mut local = Command::new("docker");
    local.arg("compose");
    let out = with_files(local, dest, tag, "0")
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
    let mut services = Vec::new();
    let mut database = None;
    for (service, def) in v["services"].as_object().into_iter().flatten() {
        database = database.or_else(|| Database::of(service, def));
        let label = |k: &str| def["labels"][k].as_str();
        let switch = match (def["restart"].as_str(), label("slipway.deploy")) {
            (Some("no"), _) => Switch::OneShot,
            (_, Some("blue-green")) => Switch::BlueGreen,
            (_, Some("last")) => Switch::Last,
            _ => Switch::InPlace,
        };
        let routed = ["slipway.path", "slipway.host", "slipway.port"].iter().any(|k| label(k).is_some());
        services.push(Service {
            name: service.clone(),
            switch,
            replicas: def["deploy"]["replicas"].as_u64().map_or(1, |n| n as usize),
            route: routed.then(|| label("slipway.route").unwrap_or(service).to_string()),
            holder: if switch == Switch::Last { Holder::of(def) } else { None },
        });
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
    Ok(Model { project, secrets, images, services, database })
}

/// The overlay that swaps each service's file secrets for its secrets volume, and gives the
/// gateway its ports holder.
pub fn overlay(model: &Model) -> Result<PathBuf, Failure> {
    let mut services = String::from("services:\n");
    for service in &model.services {
        if let Some(holder) = &service.holder {
            services.push_str(&holder.overlay(&service.name));
        }
    }
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

/// `up -d --wait` of every service (a first deploy); on failure, says which services did not
/// come up, with their last health-check output and log lines.
pub async fn up_all(compose: &Compose<'_>) -> Result<(), Failure> {
    let timeout = compose.dest.health_timeout.as_secs().max(1).to_string();
    let up = ["up", "--detach", "--wait", "--wait-timeout", &timeout, "--no-build", "--pull", "never"];
    let Err(failure) = compose.run(&up, "starting the stack").await else { return Ok(()) };
    let mut message = format!("{failure}");
    let filter = format!("label=com.docker.compose.project={}", compose.project);
    let list = compose
        .dest
        .engine
        .output(&["ps", "--all", "--filter", &filter, "--format", "{{.Names}}\t{{.Status}}"])
        .await;
    let listed = list.map(|o| String::from_utf8_lossy(&o.stdout).to_string()).unwrap_or_default();
    for line in listed.lines() {
        let (name, status) = line.split_once('\t').unwrap_or((line, ""));
        let fine = status.contains("(healthy)")
            || (status.starts_with("Up") && !status.contains("health"))
            || status.starts_with("Exited (0)");
        if !fine {
            message.push_str(&format!("\n\n{}", describe(compose.dest, name).await));
        }
    }
    Err(Failure::Failed(anyhow::anyhow!(message)))
}

/// A container as a failed deploy reports it: its name and state, its last health-check
/// output, and its last log lines.
pub async fn describe(dest: &Destination, container: &str) -> String {
    let docker = async |args: &[&str]| {
        dest.engine
            .output(args)
            .await
            .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
            .unwrap_or_default()
    };
    // The state on the first line, the health checks' output after it.
    let format = "{{.Name}}: {{.State.Status}}{{if .State.Health}} ({{.State.Health.Status}})\n\
                  {{range .State.Health.Log}}{{.Output}}{{end}}{{end}}";
    let inspected = docker(&["inspect", "--format", format, container]).await;
    let (state, health) = inspected.trim().split_once('\n').unwrap_or((inspected.trim(), ""));
    let logs = docker(&["logs", "--tail", "15", container]).await;
    let mut text = state.trim_start_matches('/').to_string();
    if let Some(last) = health.trim().lines().last() {
        text.push_str(&format!("\n  last health check: {last}"));
    }
    text.push_str("\n  last log lines:");
    for l in logs.lines() {
        text.push_str(&format!("\n    {l}"));
    }
    text
}

/// `slipway file-group PATH`: prints the group id owning `path`.
pub fn print_group(path: &std::path::Path) -> Result<(), Failure> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).map_err(|e| Failure::Refused(format!("{}: {e}", path.display())))?;
    println!("{}", meta.gid());
    Ok(())
}

/// The group of the destination's engine socket (docker-proxy runs in it), read by a
/// throwaway container of the release's CLI image.
pub async fn socket_group(dest: &Destination, tag: &str) -> Result<String, Failure> {
    let image = format!("{}/slipway:{tag}", project::IMAGES);
    let socket = "/var/run/docker.sock";
    let mount = format!("{socket}:{socket}:ro");
    let args = ["run", "--rm", "--network", "none", "--user", "0", "--volume", &mount];
    let out = dest.engine.output(&[&args[..], &[image.as_str(), "file-group", socket]].concat()).await?;
    if !out.status.success() {
        return Err(super::engine_failure(dest, "reading the group of its Docker socket", &out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
