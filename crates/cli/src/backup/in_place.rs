//! `slipway backup restore --in-place`: the live database replaced by a restore. Every running
//! container of the project stops (the apps first, Postgres last), the data volume is copied
//! aside, pgBackRest restores over it (`--delta`: only the files that differ are written),
//! Postgres starts and replays the archived WAL to the target, and the containers that were
//! running start again. Confirmation is asked by the caller.

use std::time::{Duration, Instant};

use super::Service;
use super::restore::{check, docker};
use super::scratch::{pgbackrest_restore, setup};
use crate::Failure;

/// A running container of the project: its id and compose service.
struct Running {
    id: String,
    service: String,
}

async fn running(service: &Service) -> Result<Vec<Running>, Failure> {
    let filter = format!("label=com.docker.compose.project={}", service.project);
    let format = "{{.ID}} {{.Label \"com.docker.compose.service\"}}";
    let listed =
        docker(service, &["ps", "--filter", &filter, "--format", format], "listing the project's containers")
            .await?;
    Ok(listed
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(id, name)| Running { id: id.to_string(), service: name.to_string() })
        .collect())
}

pub async fn run(service: &Service, to: Option<&str>, restore_args: &[String]) -> Result<(), Failure> {
    let started = Instant::now();
    let setup = setup(service).await?;
    let running = running(service).await?;
    let Some(postgres) = running.iter().find(|r| r.service == "postgres") else {
        return Err(Failure::Failed(anyhow::anyhow!(
            "no postgres container runs in the compose project {} on {}",
            service.project,
            service.place
        )));
    };
    let inspected = docker(
        service,
        &["inspect", "--format", "{{range .Mounts}}{{.Destination}} {{.Name}}\n{{end}}", &postgres.id],
        "inspecting Postgres",
    )
    .await?;
    let data = inspected
        .lines()
        .find_map(|l| l.strip_prefix("/var/lib/postgresql/data "))
        .filter(|name| !name.is_empty())
        .ok_or_else(|| {
            Failure::Failed(anyhow::anyhow!("Postgres has no data volume at /var/lib/postgresql/data"))
        })?
        .to_string();

    let others: Vec<&str> =
        running.iter().filter(|r| r.service != "postgres").map(|r| r.id.as_str()).collect();
    println!("stopping {} containers, then Postgres", others.len());
    if !others.is_empty() {
        docker(service, &[&["stop", "--time", "30"][..], &others].concat(), "stopping the services").await?;
    }
    docker(service, &["stop", "--time", "60", &postgres.id], "stopping Postgres").await?;

    // The data as it was, kept: a restore to a point in time discards every later commit.
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S");
    let kept = format!("{}_before_restore_{stamp}", service.project);
    docker(service, &["volume", "create", &kept], "creating the volume for the current data").await?;
    let (from, into) = (format!("{data}:/from:ro"), format!("{kept}:/to"));
    let copy = [
        "run",
        "--rm",
        "--user",
        "0",
        "--network",
        "none",
        "--volume",
        &from,
        "--volume",
        &into,
        "--entrypoint",
        "sh",
        &setup.image,
        "-c",
        "cp -a /from/. /to/",
    ];
    docker(service, &copy, "copying the current data aside").await?;
    println!("the current data is kept in volume {kept}");

    let restorer = format!("{}-restore-{stamp}", service.project);
    let mut options =
        vec!["--delta", "--recovery-option=restore_command=slipway-pgbackrest archive-get %f \"%p\""];
    options.extend(restore_args.iter().map(String::as_str));
    let restored = pgbackrest_restore(service, &setup, &restorer, &data, &options).await;
    if let Err(e) = restored {
        return Err(Failure::Failed(anyhow::anyhow!(
            "{e}\nthe project's containers are stopped; the data from before is in volume {kept} \
             (copy it back into {data} to undo)"
        )));
    }

    docker(service, &["start", &postgres.id], "starting Postgres").await?;
    let report = check(service, &postgres.id).await?;
    if !others.is_empty() {
        docker(service, &[&["start"][..], &others].concat(), "starting the services again").await?;
        healthy(service, &others).await?;
    }
    println!(
        "restored {} in place on {} in {:.1?}; {} containers started again",
        to.map_or("to the newest archived commit".to_string(), |t| format!("to {t}")),
        service.place,
        started.elapsed(),
        others.len()
    );
    print!("{report}");
    Ok(())
}

/// Waits until each of `ids` that has a health check reports healthy (two minutes at most).
async fn healthy(service: &Service, ids: &[&str]) -> Result<(), Failure> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let format = "{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}healthy{{end}}";
        let states =
            docker(service, &[&["inspect", "--format", format][..], ids].concat(), "inspecting").await?;
        let waiting: Vec<&str> = states.lines().filter(|l| !l.ends_with(" healthy")).collect();
        if waiting.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Failure::Failed(anyhow::anyhow!(
                "the database is restored, but not every container is healthy after 2 min: {}",
                waiting.join(", ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
