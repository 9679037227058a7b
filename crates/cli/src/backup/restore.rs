//! `slipway backup restore`: the repository's newest backup before the target, restored into
//! a new volume by a throwaway container of the backup service's image, then recovered by a
//! scratch Postgres on that volume (replaying archived WAL up to the target and promoting),
//! which is asked what it holds. The live database is not touched.
//!
//! The scratch containers get the backup service's `PGBACKREST_*` settings, its repository
//! volume read-only, and the encryption key copied in through the engine's archive API (never
//! on a command line or in an environment).

use std::time::{Duration, Instant};

use super::Service;
use super::scratch::{create, pgbackrest_restore, setup};
use crate::Failure;

/// `docker args…` on the service's engine: stdout, or a failure naming `what`.
pub(super) async fn docker(service: &Service, args: &[&str], what: &str) -> Result<String, Failure> {
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

/// pgBackRest's restore options for a target time (none: to the end of the archive).
pub(super) fn target(to: Option<&str>) -> Vec<String> {
    to.map(|t| vec!["--type=time".into(), format!("--target={t}"), "--target-action=promote".into()])
        .unwrap_or_default()
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
    let target = target(to);
    let options: Vec<&str> = target.iter().map(String::as_str).collect();
    pgbackrest_restore(service, &setup, &restorer, &volume, &options).await?;
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
pub(super) async fn check(service: &Service, scratch: &str) -> Result<String, Failure> {
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
