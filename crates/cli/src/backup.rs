//! `slipway backup now|list`: the backups that docker-compose.backup.yml's `backup` service
//! takes with pgBackRest, on this machine's stack or on a destination of deploy.toml; the
//! commands run pgBackRest inside that service's container, so nothing but Docker is needed
//! where they are typed.

use std::path::Path;
use std::time::Instant;

use clap::Subcommand;
use serde_json::Value;

use crate::Failure;
use crate::deploy::{self, Engine};

mod in_place;
mod restore;
mod scratch;
mod verify;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Take a backup now: incremental, or full with --full.
    Now {
        #[arg(long)]
        full: bool,
        /// A destination of deploy.toml (default: this machine's stack).
        #[arg(long, short)]
        destination: Option<String>,
    },
    /// Restore into a new volume and start a scratch Postgres on it to check it: to the end
    /// of the archived WAL (--latest) or to a point in time (--to).
    Restore {
        /// Up to the newest archived commit.
        #[arg(long, conflicts_with = "to", required_unless_present = "to")]
        latest: bool,
        /// Up to this time (RFC 3339, or what Postgres takes: `2026-12-04 17:00:00+00`).
        #[arg(long)]
        to: Option<String>,
        /// Leave the scratch Postgres running (its name is printed) to look at the data.
        #[arg(long, conflicts_with = "in_place")]
        keep: bool,
        /// Replace the live database: stop the project's containers, keep the current data in
        /// a new volume, restore over it, start them again.
        #[arg(long)]
        in_place: bool,
        /// Confirm --in-place on this machine without a terminal.
        #[arg(long)]
        yes: bool,
        /// Confirm --in-place on a destination without a terminal: its name.
        #[arg(long, value_name = "DESTINATION")]
        confirm: Option<String>,
        /// A destination of deploy.toml (default: this machine's stack).
        #[arg(long, short)]
        destination: Option<String>,
    },
    /// The restore drill: restore the latest backup and the archived WAL into a scratch
    /// Postgres inside the backup service, then check the archive, the repository's
    /// checksums, pg_amcheck, the migrations against this build's, and the key tables' rows.
    Verify {
        /// A destination of deploy.toml (default: this machine's stack).
        #[arg(long, short)]
        destination: Option<String>,
    },
    /// Every backup in the repository: label, type, when, size, WAL range.
    List {
        /// A destination of deploy.toml (default: this machine's stack).
        #[arg(long, short)]
        destination: Option<String>,
        /// pgBackRest's own JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Where the backup service runs: an engine, and the container there.
struct Service {
    engine: Engine,
    container: String,
    place: String,
    project: String,
    /// A task of a Swarm stack rather than a compose project's container.
    swarm: bool,
}

/// The compose project of this machine's stack: COMPOSE_PROJECT_NAME, from the environment
/// or the project's .env, else `slipway`.
fn local_project() -> String {
    std::env::var("COMPOSE_PROJECT_NAME").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| {
        std::fs::read_to_string(".env")
            .ok()
            .and_then(|env| {
                env.lines()
                    .find_map(|l| l.strip_prefix("COMPOSE_PROJECT_NAME=").map(|p| p.trim().to_string()))
            })
            .unwrap_or_else(|| "slipway".to_string())
    })
}

async fn service(destination: Option<&str>) -> Result<Service, Failure> {
    let (engine, project, place, how) = match destination {
        Some(name) => {
            let dest = deploy::find(Path::new("."), name)?;
            let project = deploy::project(&dest).await?;
            let how =
                format!("add docker-compose.backup.yml to the files of {name} in deploy.toml, and deploy");
            (dest.engine.clone(), project, format!("{name} ({})", dest.engine.describe()), how)
        }
        None => {
            let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
            let engine =
                Engine::parse(&host).map_err(|e| Failure::Failed(anyhow::anyhow!("DOCKER_HOST: {e}")))?;
            let how =
                "start the stack with it: docker compose -f docker-compose.yml -f docker-compose.backup.yml \
                       up -d --wait"
                    .to_string();
            (engine, local_project(), "this machine".to_string(), how)
        }
    };
    // A compose project's backup service, else a Swarm stack's of the same name (a task
    // on this engine: the node that keeps Postgres's volumes).
    let compose = [
        format!("label=com.docker.compose.project={project}"),
        "label=com.docker.compose.service=backup".into(),
    ];
    let swarm = [format!("label=com.docker.swarm.service.name={project}_backup")];
    for (filters, on_swarm) in [(&compose[..], false), (&swarm[..], true)] {
        let mut args = vec!["ps", "--quiet"];
        filters.iter().for_each(|f| args.extend(["--filter", f.as_str()]));
        let out = engine.output(&args).await?;
        if !out.status.success() {
            return Err(Failure::Failed(anyhow::anyhow!(
                "cannot list the containers on {place}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        if let Some(container) = String::from_utf8_lossy(&out.stdout).lines().next() {
            let container = container.to_string();
            return Ok(Service { engine, container, place, project, swarm: on_swarm });
        }
    }
    Err(Failure::Failed(anyhow::anyhow!(
        "no backup service runs in the compose project or Swarm stack {project} on {place}: it comes \
         with docker-compose.backup.yml; {how} (COMPOSE_PROJECT_NAME names another project or stack)"
    )))
}

/// `slipway-pgbackrest args…` in the backup container: its output, or its last words.
async fn pgbackrest(service: &Service, args: &[&str]) -> Result<String, Failure> {
    let exec = [&["exec", service.container.as_str(), "slipway-pgbackrest"][..], args].concat();
    let out = service.engine.output(&exec).await?;
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    if out.status.success() {
        return Ok(said);
    }
    let err = format!("{said}{}", String::from_utf8_lossy(&out.stderr));
    let last: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    Err(Failure::Failed(anyhow::anyhow!(
        "pgbackrest {} failed on {}:\n  {}",
        args.first().unwrap_or(&""),
        service.place,
        last[last.len().saturating_sub(6)..].join("\n  ")
    )))
}

/// `slipway-backup take KIND` in the backup container: a backup that records the key
/// tables' row counts with it, as the schedule's do.
async fn take(service: &Service, kind: &str) -> Result<(), Failure> {
    let out = service.engine.output(&["exec", &service.container, "slipway-backup", "take", kind]).await?;
    if out.status.success() {
        return Ok(());
    }
    // What slipway-backup said: the repository, then pgBackRest's reason (its JSON log
    // lines are for the service's log).
    let said = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> =
        said.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('{')).take(12).collect();
    Err(Failure::Failed(anyhow::anyhow!(
        "the {kind} backup failed on {}:\n  {}",
        service.place,
        lines.join("\n  ")
    )))
}

pub async fn run(cmd: Command) -> Result<(), Failure> {
    match cmd {
        Command::Now { full, destination } => {
            let service = service(destination.as_deref()).await?;
            let kind = if full { "full" } else { "incr" };
            let started = Instant::now();
            take(&service, kind).await?;
            let info = pgbackrest(&service, &["info", "--output=json"]).await?;
            let label = backups(&info).last().and_then(|b| b["label"].as_str().map(str::to_string));
            println!(
                "backup {} ({kind}) taken on {} in {:.1?}",
                label.as_deref().unwrap_or("?"),
                service.place,
                started.elapsed()
            );
            Ok(())
        }
        Command::Restore { latest: _, to, keep, in_place: false, destination, .. } => {
            let service = service(destination.as_deref()).await?;
            restore::run(&service, to.as_deref(), keep).await
        }
        Command::Restore { latest: _, to, in_place: true, yes, confirm, destination, .. } => {
            let service = service(destination.as_deref()).await?;
            if service.swarm {
                return Err(Failure::Refused(format!(
                    "--in-place is not built for Swarm yet (Swarm restarts the containers it would stop): \
                     without --in-place the restore goes into a new volume and leaves the live \
                     database of {} as it is",
                    service.project
                )));
            }
            let question = format!(
                "This stops every container of {} on {} and replaces its database with the backup {}; \
                 the current data is kept in a new volume.",
                service.project,
                service.place,
                to.as_deref()
                    .map_or("up to the newest archived commit".to_string(), |t| format!("as of {t}")),
            );
            match &destination {
                Some(name) => crate::prompt::type_name(&question, name, confirm.as_deref())?,
                None => crate::prompt::confirm(&question, yes)?,
            }
            in_place::run(&service, to.as_deref(), &restore::target(to.as_deref())).await
        }
        Command::Verify { destination } => {
            let service = service(destination.as_deref()).await?;
            verify::run(&service).await
        }
        Command::List { destination, json } => {
            let service = service(destination.as_deref()).await?;
            let info = pgbackrest(&service, &["info", "--output=json"]).await?;
            if json {
                println!("{}", info.trim());
                return Ok(());
            }
            print_list(&info, &service.place);
            Ok(())
        }
    }
}

/// The backups of pgBackRest's `info --output=json`, oldest first.
fn backups(info: &str) -> Vec<Value> {
    let parsed: Value = serde_json::from_str(info).unwrap_or_default();
    parsed[0]["backup"].as_array().cloned().unwrap_or_default()
}

fn print_list(info: &str, place: &str) {
    let parsed: Value = serde_json::from_str(info).unwrap_or_default();
    let list = backups(info);
    if list.is_empty() {
        println!("no backups yet on {place}");
        return;
    }
    let time = |v: &Value| {
        v.as_i64()
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map_or("?".to_string(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
    };
    println!("{:<26} {:<5} {:<24} {:>10} {:>10}  WAL", "LABEL", "TYPE", "FINISHED", "SIZE", "STORED");
    for b in &list {
        let mb = |v: &Value| format!("{:.1} MB", v.as_f64().unwrap_or(0.0) / 1e6);
        println!(
            "{:<26} {:<5} {:<24} {:>10} {:>10}  {}–{}",
            b["label"].as_str().unwrap_or("?"),
            b["type"].as_str().unwrap_or("?"),
            time(&b["timestamp"]["stop"]),
            mb(&b["info"]["size"]),
            mb(&b["info"]["repository"]["delta"]),
            b["archive"]["start"].as_str().unwrap_or("?"),
            b["archive"]["stop"].as_str().unwrap_or("?"),
        );
    }
    let archive = &parsed[0]["archive"][0];
    println!(
        "WAL archived: {} to {}; repository encrypted: {}",
        archive["min"].as_str().unwrap_or("?"),
        archive["max"].as_str().unwrap_or("?"),
        parsed[0]["cipher"].as_str().unwrap_or("?")
    );
}
