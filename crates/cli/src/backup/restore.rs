//! `slipway backup restore`: the repository's newest backup before the target, restored into
//! a new volume by a throwaway container of the backup service's image, then recovered by a
//! scratch Postgres on that volume (replaying archived WAL up to the target and promoting),
//! which is asked what it holds. The live database is not touched.
//!
//! The scratch containers get the backup service's `PGBACKREST_*` settings, its repository
//! volume read-only, and the encryption key copied in through the engine's archive API (never
//! on a command line or in an environment).

use std::time::{Duration, Instant};

use serde_json::Value;

use super::Service;
use crate::Failure;

/// `docker args…` on the service's engine: stdout, or a failure naming `what`.
async fn docker(service: &Service, args: &[&str], what: &str) -> Result<String, Failure> {
    let out = service.engine.output(args).await?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let tail: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
    Err(Failure::Failed(anyhow::anyhow!(
        "{what} failed on {}:\n  {}",
        service.place,
        tail[tail.len().saturating_sub(8)..].join("\n  ")
    )))
}

/// What the scratch containers take from the backup service: its image, its pgBackRest
/// settings, and its repository volume.
struct Setup {
    image: String,
    env: Vec<String>,
    repository: String,
}

async fn setup(service: &Service) -> Result<Setup, Failure> {
    let inspected =
        docker(service, &["inspect", &service.container], "inspecting the backup service").await?;
    let c: Value = serde_json::from_str::<Value>(&inspected).unwrap_or_default()[0].clone();
    let env = c["Config"]["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|e| e.starts_with("PGBACKREST_") && !e.starts_with("PGBACKREST_REPO1_CIPHER_PASS"))
        .map(str::to_string)
        .collect();
    let repository = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["Destination"] == "/var/lib/pgbackrest")
        .and_then(|m| m["Name"].as_str())
        .ok_or_else(|| Failure::Failed(anyhow::anyhow!("the backup service has no repository volume")))?
        .to_string();
    Ok(Setup {
        image: c["Config"]["Image"].as_str().unwrap_or("slipway/postgres:15").to_string(),
        env,
        repository,
    })
}

/// Creates a container with the backup service's settings, the repository (read-only) and
/// `volume` as the data directory, from `rest` (options, the image, its command), and copies
/// the key in.
async fn create(
    service: &Service,
    setup: &Setup,
    name: &str,
    volume: &str,
    rest: &[&str],
) -> Result<(), Failure> {
    let data = format!("{volume}:/var/lib/postgresql/data");
    let repo = format!("{}:/var/lib/pgbackrest:ro", setup.repository);
    let mut args: Vec<String> =
        ["create", "--name", name, "--network", "none", "--volume", &data, "--volume", &repo]
            .iter()
            .map(|s| s.to_string())
            .collect();
    for e in &setup.env {
        args.extend(["--env".to_string(), e.clone()]);
    }
    args.extend(["--env".into(), "PGBACKREST_REPO1_CIPHER_PASS_FILE=/tmp/backup_key".into()]);
    args.extend(rest.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker(service, &args, "creating a restore container").await?;
    // The key, from the backup service's secret into the new container's /tmp, as a tar
    // stream between the two through the engine.
    let from = format!("{}:/run/secrets/backup_key", service.container);
    let key = service.engine.docker().args(["cp", &from, "-"]).output().await;
    let key = key.map_err(|e| Failure::Failed(anyhow::anyhow!("cannot run docker cp: {e}")))?;
    if !key.status.success() {
        return Err(Failure::Failed(anyhow::anyhow!(
            "the backup service has no key at /run/secrets/backup_key: {}",
            String::from_utf8_lossy(&key.stderr).trim()
        )));
    }
    match crate::deploy::copy_in(&service.engine, &format!("{name}:/tmp"), &key.stdout).await? {
        None => Ok(()),
        Some(said) => Err(Failure::Failed(anyhow::anyhow!(
            "copying the backup key into {name} failed on {}: {}",
            service.place,
            String::from_utf8_lossy(&said).trim()
        ))),
    }
}

pub async fn run(service: &Service, to: Option<&str>, keep: bool) -> Result<(), Failure> {
    let started = Instant::now();
    let setup = setup(service).await?;
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S");
    let project = &service.project;
    let volume = format!("{project}_restored_{stamp}");
    let (restorer, scratch) = (format!("{project}-restore-{stamp}"), format!("{project}-restored-{stamp}"));
    docker(service, &["volume", "create", &volume], "creating the volume").await?;

    // The restore itself: pgBackRest in a container of its own, on the new volume.
    let target = to.map(|t| format!("--target={t}"));
    let mut restore = vec!["--user", "postgres", "--entrypoint", "slipway-pgbackrest"];
    restore.extend([setup.image.as_str(), "restore", "--log-level-console=warn"]);
    if let Some(target) = &target {
        restore.extend(["--type=time", target, "--target-action=promote"]);
    }
    let restored = async {
        create(service, &setup, &restorer, &volume, &restore).await?;
        docker(service, &["start", "--attach", &restorer], "restoring (pgbackrest restore)").await
    }
    .await;
    let _ = docker(service, &["rm", "--force", &restorer], "removing the restore container").await;
    restored?;
    let restored_in = started.elapsed();

    // Recovery: a scratch Postgres on the volume replays the archived WAL to the target and
    // promotes; then it is asked what it holds.
    let recover = [
        setup.image.as_str(),
        "postgres",
        "-c",
        "listen_addresses=",
        "-c",
        "archive_mode=off",
        "-c",
        "restore_command=slipway-pgbackrest archive-get %f \"%p\"",
    ];
    create(service, &setup, &scratch, &volume, &recover).await?;
    let checked = match docker(service, &["start", &scratch], "starting the scratch Postgres").await {
        Ok(_) => check(service, &scratch).await,
        Err(e) => Err(e),
    };
    if !keep || checked.is_err() {
        let _ = docker(service, &["rm", "--force", &scratch], "removing the scratch Postgres").await;
    }
    let report = checked?;
    println!(
        "restored {} into volume {volume} on {} in {:.1?} (recovered in {:.1?} more)",
        to.map_or("to the newest archived commit".to_string(), |t| format!("to {t}")),
        service.place,
        restored_in,
        started.elapsed() - restored_in
    );
    print!("{report}");
    if keep {
        println!(
            "the scratch Postgres {scratch} runs on it: docker exec -it {scratch} psql -U slipway -d slipway"
        );
    }
    Ok(())
}

/// Waits until the scratch Postgres has recovered and accepts queries, then counts the rows
/// of every Slipway table.
async fn check(service: &Service, scratch: &str) -> Result<String, Failure> {
    let psql = |sql: &'static str| {
        let scratch = scratch.to_string();
        async move {
            let args = [
                "exec", "--user", "postgres", &scratch, "psql", "-U", "slipway", "-d", "slipway", "-tAXc",
                sql,
            ];
            service
                .engine
                .output(&args)
                .await
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim_end().to_string())
        }
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if psql("SELECT pg_is_in_recovery()").await.as_deref() == Some("f") {
            break;
        }
        if Instant::now() > deadline {
            let logs = service.engine.output(&["logs", "--tail", "15", scratch]).await.ok();
            let logs = logs.map(|o| String::from_utf8_lossy(&o.stderr).to_string()).unwrap_or_default();
            return Err(Failure::Failed(anyhow::anyhow!(
                "the restored database did not finish recovery in 5 min:\n{logs}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let counts = psql(
        "SELECT string_agg(format('  %s.%s: %s rows', n.nspname, c.relname, \
         (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text), \
         E'\\n' ORDER BY n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
    )
    .await
    .unwrap_or_default();
    Ok(format!("{counts}\n"))
}
