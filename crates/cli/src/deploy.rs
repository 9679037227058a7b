//! `slipway deploy`: a release shipped to a destination named in the committed `deploy.toml`.
//!
//! ```toml
//! [destinations.prod]
//! engine = "ssh://deploy@203.0.113.10"   # or unix:///var/run/docker.sock, or context:NAME
//! public_url = "https://example.com"
//! ```
//!
//! A deploy checks the engine, ships the images it lacks, takes the destination's lock, stores
//! each service's secrets in a volume of its own there, and switches to the new release
//! (`switch`): migrations first, then blue-green per service, health-gated, the gateway last.
//! A release that is not healthy in time is removed and fails the deploy, naming the service
//! with its last health check and log lines; the old release keeps serving.

mod archive;
mod compose;
mod destination;
mod engine;
mod history;
mod images;
pub mod logs;
mod ports;
mod report;
mod rotate;
mod secrets;
pub mod status;
mod switch;

pub use compose::print_group;

use std::path::Path;
use std::time::Instant;

pub use archive::{archive, put as copy_in};
pub use destination::{Destination, find};
pub use engine::Engine;

use serde_json::json;

use crate::Failure;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A destination named in deploy.toml.
    destination: String,
    /// The release's image tag (`slipway/<service>:<tag>`); by default the git commit.
    #[arg(long)]
    tag: Option<String>,
    /// Deploy the commit of a tree with uncommitted changes.
    #[arg(long)]
    allow_dirty: bool,
    /// Wait for the destination's deploy lock instead of failing when it is held.
    #[arg(long)]
    wait: bool,
    /// Print each step as a JSON line (for CI) instead of text.
    #[arg(long)]
    json: bool,
}

/// The engine failed at `what`: which destination, how it was reached, docker's words, and
/// what to do when they say the usual things.
pub fn engine_failure(dest: &Destination, what: &str, stderr: &[u8]) -> Failure {
    let all = String::from_utf8_lossy(stderr);
    let said = all.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("no answer").trim();
    let hint = hint(&all).map(|h| format!("\n  {h}")).unwrap_or_default();
    Failure::Failed(anyhow::anyhow!(
        "{what} failed on the Docker engine of {} ({}): {said}{hint}",
        dest.name,
        dest.engine.describe()
    ))
}

/// What to do about the engine's usual complaints.
fn hint(said: &str) -> Option<&'static str> {
    if said.contains("docker: command not found") || said.contains("exit status 127") {
        Some(
            "the host has no `docker` command: install Docker Engine there (and keep sshd), then deploy again",
        )
    } else if said.contains("Permission denied (publickey") || said.contains("Host key verification failed") {
        Some(
            "ssh could not log in: check the user in the engine address, that your key is authorized there (ssh-copy-id), and that the host's key is known (ssh once by hand)",
        )
    } else if said.contains("Cannot connect to the Docker daemon") {
        Some("Docker is installed but its daemon does not answer there: start it (systemctl start docker)")
    } else if said.contains("permission denied while trying to connect to the Docker daemon socket") {
        Some(
            "the user may not use Docker there: add it to the host's docker group, or deploy as another user",
        )
    } else {
        None
    }
}

pub async fn run(args: Args) -> Result<(), Failure> {
    let dest = find(Path::new("."), &args.destination)?;
    let tag = match args.tag {
        Some(tag) => tag,
        None => git_tag(args.allow_dirty).await?,
    };
    report::begin(args.json);
    release(&dest, &tag, Kind::Deploy, args.wait).await
}

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// A destination named in deploy.toml.
    destination: String,
    /// The release to go back to; by default the one live before the current one.
    release: Option<String>,
    /// Wait for the destination's deploy lock instead of failing when it is held.
    #[arg(long)]
    wait: bool,
    /// Print each step as a JSON line (for CI) instead of text.
    #[arg(long)]
    json: bool,
}

/// `slipway rollback`: an earlier release's images, still on the host, through the same
/// health-gated switch, without its migrations (the database keeps its schema).
pub async fn rollback(args: RollbackArgs) -> Result<(), Failure> {
    let dest = find(Path::new("."), &args.destination)?;
    let releases = recorded(&dest).await?;
    let live = history::live(&releases).map(|r| r.tag.clone());
    let target = match args.release {
        Some(tag) => tag,
        None => {
            let mut earlier = releases.iter().rev().filter(|r| r.outcome == "live").map(|r| &r.tag);
            let current = earlier.next();
            earlier.find(|t| Some(*t) != current).cloned().ok_or_else(|| {
                Failure::Failed(anyhow::anyhow!("{} has no earlier release to roll back to", dest.name))
            })?
        }
    };
    if live.as_deref() == Some(target.as_str()) {
        return Err(Failure::Refused(format!("{target} is already live on {}", dest.name)));
    }
    report::begin(args.json);
    release(&dest, &target, Kind::Rollback, args.wait).await
}

#[derive(Debug, clap::Args)]
pub struct ReleasesArgs {
    /// A destination named in deploy.toml.
    destination: String,
}

/// `slipway releases`: the destination's history, newest first.
pub async fn releases(args: ReleasesArgs) -> Result<(), Failure> {
    let dest = find(Path::new("."), &args.destination)?;
    let releases = recorded(&dest).await?;
    if releases.is_empty() {
        println!("{}: no releases yet", dest.name);
    }
    for r in releases.iter().rev() {
        let replaced = r.replaced.as_deref().map(|t| format!(", replaced {t}")).unwrap_or_default();
        println!(
            "{:<14} {:<8} {}  by {}  {:.0} s  {}{replaced}",
            r.tag, r.kind, r.at, r.by, r.seconds, r.outcome
        );
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Deploy,
    Rollback,
}

/// A deploy or a rollback of `tag`: check the engine, ship the images (a rollback finds
/// them on the host), take the lock, switch, record the outcome in the history.
async fn release(dest: &Destination, tag: &str, kind: Kind, wait: bool) -> Result<(), Failure> {
    let started = Instant::now();
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let verb = if kind == Kind::Deploy { "deploying" } else { "rolling back to" };
    let kind_name = if kind == Kind::Deploy { "deploy" } else { "rollback" };
    report::step(
        "start",
        json!({ "release": tag, "destination": dest.name, "kind": kind_name }),
        format!("slipway: {verb} {tag} on {} ({})", dest.name, dest.engine.describe()),
    );
    reach(dest).await?;
    let model = compose::model(dest, tag).await?;
    if let Some(warning) = unprotected(&dest.name, &model) {
        report::warn(warning);
    }
    let images = if kind == Kind::Deploy {
        report::step("images", json!({}), "images:");
        images::ship(dest, &model.images).await?
    } else {
        images::on_host(dest, &model.images).await?
    };
    let cli_image = format!("{}/slipway:{tag}", project::IMAGES);
    let lock = crate::lock::acquire(dest, &cli_image, wait).await?;
    let result = switch(dest, &model, tag, kind).await;
    let outcome = match &result {
        Ok(()) => "live".to_string(),
        Err(e) => format!("failed: {}", e.to_string().lines().next().unwrap_or("")),
    };
    let record = history::Release {
        tag: tag.to_string(),
        kind: if kind == Kind::Deploy { "deploy" } else { "rollback" }.into(),
        images,
        by: crate::lock::Holder::me().who(),
        at,
        seconds: started.elapsed().as_secs_f64(),
        outcome,
        replaced: None,
    };
    let appended = history::append(dest, &model.project, &cli_image, record).await;
    if result.is_ok()
        && let Ok(releases) = &appended
    {
        let kept = history::last_live(releases, images::KEPT_RELEASES);
        images::prune(dest, &model.images, tag, &kept).await;
    }
    lock.release().await;
    result?;
    if let Err(e) = appended {
        report::warn(format!("the release is live, but recording it in the history failed: {e}"));
    }
    report::step(
        "live",
        json!({ "release": tag, "seconds": started.elapsed().as_secs_f64() }),
        format!("slipway: {tag} is live on {} ({:.1?})", dest.name, started.elapsed()),
    );
    Ok(())
}

/// A warning when the stack keeps a database and nothing backs it up: no `backup` service,
/// which docker-compose.backup.yml brings.
fn unprotected(destination: &str, model: &compose::Model) -> Option<String> {
    let backed_up = model.services.iter().any(|s| s.name == "backup");
    (model.database.is_some() && !backed_up).then(|| {
        format!(
            "nothing backs up the database of {}: add docker-compose.backup.yml to its files in deploy.toml \
             (continuous, encrypted, point-in-time backups with a daily restore drill; README, Backups)",
            destination
        )
    })
}

/// Fails with the engine's words unless `docker version` answers on the destination.
async fn reach(dest: &Destination) -> Result<(), Failure> {
    let out = dest.engine.output(&["version", "--format", "{{.Server.Version}}"]).await?;
    if out.status.success() { Ok(()) } else { Err(engine_failure(dest, "reaching the engine", &out.stderr)) }
}

/// The compose project a destination's files make (its containers are labelled with it).
pub async fn project(dest: &Destination) -> Result<String, Failure> {
    Ok(compose::model(dest, "none").await?.project)
}

/// The destination's release history, read outside a deploy: the project's name as the
/// destination's files resolve it, and any `slipway/slipway` image the host has for the
/// history's helper container.
async fn recorded(dest: &Destination) -> Result<Vec<history::Release>, Failure> {
    reach(dest).await?;
    let project = compose::model(dest, "none").await?.project;
    recorded_in(dest, &project).await
}

/// The history of `project` on the destination (see [`recorded`]).
async fn recorded_in(dest: &Destination, project: &str) -> Result<Vec<history::Release>, Failure> {
    let out = dest
        .engine
        .output(&["images", "--filter", "reference=slipway/slipway", "--format", "{{.Repository}}:{{.Tag}}"])
        .await?;
    let image = String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_string);
    let image =
        image.ok_or_else(|| Failure::Failed(anyhow::anyhow!("{} has had no release yet", dest.name)))?;
    history::read(dest, project, &image).await
}

/// Under the lock: secrets, then the switch to the new release.
async fn switch(dest: &Destination, model: &compose::Model, tag: &str, kind: Kind) -> Result<(), Failure> {
    report::step("secrets", json!({}), "secrets:");
    secrets::store(dest, model, tag).await?;
    let gid = compose::socket_group(dest, tag).await?;
    let overlay = compose::overlay(model)?;
    let compose = compose::Compose::new(dest, model, tag, gid, overlay.clone());
    let migrations = if kind == Kind::Deploy { switch::Migrations::Run } else { switch::Migrations::Check };
    let switched = switch::release(&compose, model, migrations).await;
    let _ = std::fs::remove_file(&overlay);
    switched
}

/// The git commit as a tag (12 hex digits); a tree with uncommitted changes is refused
/// unless `allow_dirty`.
async fn git_tag(allow_dirty: bool) -> Result<String, Failure> {
    let git = |args: &'static [&'static str]| async move {
        tokio::process::Command::new("git").args(args).output().await.ok().filter(|o| o.status.success())
    };
    let Some(head) = git(&["rev-parse", "--short=12", "HEAD"]).await else {
        return Err(Failure::Failed(anyhow::anyhow!(
            "no git commit to name the release by: run inside the project's repository, or give --tag"
        )));
    };
    let dirty = git(&["status", "--porcelain"]).await.is_none_or(|o| !o.stdout.is_empty());
    if dirty && !allow_dirty {
        return Err(Failure::Refused(
            "the working tree has uncommitted changes, so the images may not be what the commit says: \
             commit them, or pass --allow-dirty"
                .into(),
        ));
    }
    Ok(String::from_utf8_lossy(&head.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::compose::{Model, Service, Switch};
    use super::rotate::Database;
    use super::{hint, unprotected};

    #[test]
    fn a_stack_with_a_database_and_no_backup_service_is_warned_about_and_one_with_it_is_not() {
        let service = |name: &str| Service {
            name: name.into(),
            switch: Switch::InPlace,
            replicas: 1,
            route: None,
            holder: None,
        };
        let postgres = serde_json::json!({ "environment": { "POSTGRES_PASSWORD_FILE": "/run/secrets/database_password" } });
        let mut model = Model {
            project: "p".into(),
            secrets: Default::default(),
            images: vec![],
            services: vec![service("postgres"), service("auth")],
            database: Database::of("postgres", &postgres),
        };
        let warned = unprotected("prod", &model);
        assert!(warned.is_some_and(|w| w.contains("prod") && w.contains("docker-compose.backup.yml")));
        model.services.push(service("backup"));
        assert_eq!(unprotected("prod", &model), None);
        model.database = None;
        model.services.pop();
        assert_eq!(unprotected("prod", &model), None, "no database, nothing to back up");
    }

    #[test]
    fn a_host_without_docker_or_without_a_login_or_a_running_daemon_is_told_what_to_do() {
        let no_docker = "error during connect: Get \"http://docker.example.com/v1.24/version\": command [ssh -o \
                         ConnectTimeout=30 -T -- root@10.0.0.5 docker system dial-stdio] has exited with exit status \
                         127, make sure the URL is valid, and Docker 18.09 or later is installed on the remote host: \
                         stderr=bash: line 1: docker: command not found";
        assert!(hint(no_docker).is_some_and(|h| h.contains("install Docker Engine")));
        let no_key = "stderr=root@10.0.0.5: Permission denied (publickey,password).";
        assert!(hint(no_key).is_some_and(|h| h.contains("ssh-copy-id")));
        let stopped = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?";
        assert!(hint(stopped).is_some_and(|h| h.contains("systemctl start docker")));
        assert_eq!(hint("Error response from daemon: No such container: x"), None);
    }
}
