//! The backup benchmark: about 1 GB of pgbench data in a container of slipway/postgres:15
//! archiving to an encrypted pgBackRest repository as docker-compose.backup.yml sets it up.
//! Figures, from one run: a full backup beside `pg_dump -Fc` of the same database, a restore
//! (files, then WAL replay until promoted) beside `pg_restore` into an empty database, the
//! sizes of both, and the commits lost under steady writes when the host dies (RPO).

use std::time::Instant;

use serde_json::json;
use tokio::process::Command;

use super::results_path;

const CONTAINER: &str = "slipway-bench-backup";
const DATA: &str = "slipway-bench-backup-data";
const REPO: &str = "slipway-bench-backup-repo";
/// pgbench's scale for about 1 GB with its indexes.
const SCALE: &str = "68";

/// `docker args…`: stdout, or an error with what it said.
async fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker").args(args).output().await?;
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    anyhow::ensure!(
        out.status.success(),
        "docker {} failed: {said}{}",
        args.first().unwrap_or(&""),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(said)
}

/// `sh -c script` as postgres in `container`: its output and how long it took, in seconds.
async fn timed(container: &str, script: &str) -> anyhow::Result<(String, f64)> {
    let started = Instant::now();
    let said = docker(&["exec", "--user", "postgres", container, "bash", "-c", script]).await?;
    Ok((said, started.elapsed().as_secs_f64()))
}

/// The pgBackRest settings of docker-compose.backup.yml, with the key given directly (a
/// benchmark's throwaway key) and the repository on a volume.
fn pgbackrest_env() -> Vec<String> {
    [
        "PGBACKREST_STANZA=slipway",
        "PGBACKREST_PG1_PATH=/var/lib/postgresql/data",
        "PGBACKREST_REPO1_PATH=/var/lib/pgbackrest",
        "PGBACKREST_REPO1_CIPHER_TYPE=aes-256-cbc",
        "PGBACKREST_REPO1_CIPHER_PASS=bench-only-key",
        "PGBACKREST_REPO1_RETENTION_FULL=2",
        "PGBACKREST_START_FAST=y",
        "PGBACKREST_COMPRESS_TYPE=zst",
        "PGBACKREST_LOG_LEVEL_CONSOLE=warn",
        "PGBACKREST_LOG_LEVEL_FILE=off",
        "PGBACKREST_LOCK_PATH=/tmp/pgbackrest",
    ]
    .iter()
    .flat_map(|e| ["--env".to_string(), e.to_string()])
    .collect()
}

async fn cleanup() {
    for args in [
        &["rm", "--force", CONTAINER][..],
        &["rm", "--force", "slipway-bench-restore"],
        &["volume", "rm", "--force", DATA, REPO],
    ] {
        let _ = docker(args).await;
    }
}

/// Starts Postgres archiving to the repository, as the compose overlay does.
async fn start() -> anyhow::Result<()> {
    let (data, repo) = (format!("{DATA}:/var/lib/postgresql/data"), format!("{REPO}:/var/lib/pgbackrest"));
    let mut args: Vec<String> =
        ["run", "--detach", "--name", CONTAINER, "--shm-size", "256m", "--volume", &data]
            .map(String::from)
            .to_vec();
    args.extend(["--volume".into(), repo, "--env".into(), "POSTGRES_PASSWORD=bench".into()]);
    args.extend(pgbackrest_env());
    args.extend(
        [
            "slipway/postgres:15",
            "postgres",
            "-c",
            "archive_mode=on",
            "-c",
            "archive_command=pgbackrest archive-push %p",
            "-c",
            "archive_timeout=50",
            "-c",
            "max_wal_size=4GB",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker(&args).await?;
    for _ in 0..120 {
        if timed(CONTAINER, "pg_isready -q && psql -qAtc 'SELECT 1' >/dev/null").await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    anyhow::bail!(
        "Postgres did not start: {}",
        docker(&["logs", "--tail", "20", CONTAINER]).await.unwrap_or_default()
    )
}

pub async fn run() -> anyhow::Result<()> {
    cleanup().await;
    let built =
        Command::new("docker").args(["build", "-q", "-t", "slipway/postgres:15", "docker/postgres"]).status();
    anyhow::ensure!(built.await?.success(), "docker build docker/postgres failed (run from the workspace)");
    start().await?;
    let result = measure().await;
    cleanup().await;
    result
}

async fn measure() -> anyhow::Result<()> {
    println!("generating pgbench data at scale {SCALE}…");
    timed(CONTAINER, &format!("pgbench -i -q -s {SCALE} postgres 2>&1 | tail -n 1")).await?;
    let (bytes, _) = timed(CONTAINER, "psql -qAtc \"SELECT pg_database_size('postgres')\"").await?;
    let mb = bytes.parse::<f64>()? / 1e6;
    timed(CONTAINER, "pgbackrest stanza-create").await?;

    let (_, backup_s) = timed(CONTAINER, "pgbackrest backup --type=full").await?;
    let (repo, _) = timed(CONTAINER, "du -sb /var/lib/pgbackrest/backup | cut -f1").await?;
    let (_, dump_s) = timed(CONTAINER, "pg_dump -Fc -f /tmp/bench.dump postgres").await?;
    let (dump, _) = timed(CONTAINER, "stat -c %s /tmp/bench.dump").await?;
    let (repo_mb, dump_mb) = (repo.parse::<f64>()? / 1e6, dump.parse::<f64>()? / 1e6);
    println!(
        "database {mb:.0} MB: full backup {backup_s:.1} s ({:.0} MB/s, {repo_mb:.0} MB stored, encrypted); \
         pg_dump -Fc {dump_s:.1} s ({:.0} MB/s, {dump_mb:.0} MB); ratio {:.2}",
        mb / backup_s,
        mb / dump_s,
        backup_s / dump_s
    );

    // Restore: pgBackRest's files into a new directory, then a Postgres on it replays the
    // archived WAL and promotes; beside pg_restore of the dump into an empty database.
    let restore = "rm -rf /tmp/r && pgbackrest restore --pg1-path=/tmp/r --archive-mode=off \
        && pg_ctl -D /tmp/r -w -t 600 -l /tmp/r.log -o \"-p 5433 -c listen_addresses='' -c unix_socket_directories=/tmp\" start >/dev/null \
        && until [ \"$(psql -h /tmp -p 5433 -qAtc 'SELECT pg_is_in_recovery()')\" = f ]; do sleep 0.1; done \
        && pg_ctl -D /tmp/r -m fast stop >/dev/null && rm -rf /tmp/r";
    let (_, restore_s) = timed(CONTAINER, restore).await?;
    let (_, pg_restore_s) =
        timed(CONTAINER, "createdb restored && pg_restore -d restored /tmp/bench.dump && dropdb restored")
            .await?;
    println!(
        "restore {restore_s:.1} s (files and recovery) beside pg_restore {pg_restore_s:.1} s; ratio {:.2}",
        restore_s / pg_restore_s
    );

    // RPO: steady writes (pgbench's TPC-B-like transactions at 100/s for 70 s), then the
    // container killed as a lost host would be; a new container restores the repository to
    // its newest commit, and the commits missing are counted and timed.
    let (said, _) = timed(CONTAINER, "pgbench -n -R 100 -T 70 postgres 2>&1; date +%s.%N").await?;
    let processed = said
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|n| n.split('/').next())
        .ok_or_else(|| anyhow::anyhow!("pgbench said: {said}"))?
        .parse::<u64>()?;
    docker(&["kill", CONTAINER]).await?;
    let repo = format!("{REPO}:/var/lib/pgbackrest");
    let mut args: Vec<String> = ["run", "--detach", "--name", "slipway-bench-restore", "--user", "postgres"]
        .map(String::from)
        .to_vec();
    args.extend(["--volume".into(), repo, "--entrypoint".into(), "sleep".into()]);
    args.extend(pgbackrest_env());
    args.extend(["slipway/postgres:15".into(), "infinity".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker(&args).await?;
    let latest = "pgbackrest restore --pg1-path=/tmp/r --archive-mode=off >/dev/null \
        && pg_ctl -D /tmp/r -w -t 600 -l /tmp/r.log -o \"-c listen_addresses='' -c unix_socket_directories=/tmp\" start >/dev/null \
        && until [ \"$(psql -h /tmp -qAtc 'SELECT pg_is_in_recovery()' postgres 2>/dev/null)\" = f ]; do sleep 0.1; done \
        && psql -h /tmp -qAtc \"SELECT count(*) || ' ' || extract(epoch FROM max(mtime)) FROM pgbench_history\" postgres";
    let (restored, _) = timed("slipway-bench-restore", latest).await?;
    let end: f64 = said.lines().last().unwrap_or("0").parse()?;
    let (rows, newest) = restored.split_once(' ').ok_or_else(|| anyhow::anyhow!("restored: {restored}"))?;
    let (rows, newest) = (rows.parse::<u64>()?, newest.parse::<f64>()?);
    let lost_s = end - newest;
    println!(
        "RPO under steady writes: {} of {processed} commits lost, the last {lost_s:.1} s (archive_timeout 50 s)",
        processed.saturating_sub(rows)
    );

    let results = json!({
        "database_mb": mb,
        "backup": { "pgbackrest_full_s": backup_s, "pg_dump_s": dump_s, "ratio": backup_s / dump_s,
                    "repository_mb": repo_mb, "dump_mb": dump_mb },
        "restore": { "pgbackrest_s": restore_s, "pg_restore_s": pg_restore_s, "ratio": restore_s / pg_restore_s },
        "rpo": { "commits": processed, "lost": processed.saturating_sub(rows), "lost_s": lost_s },
    });
    let path = results_path("backup");
    std::fs::create_dir_all(path.parent().unwrap_or(std::path::Path::new(".")))?;
    std::fs::write(&path, serde_json::to_string_pretty(&results)?)?;
    println!("written to {}", path.display());
    Ok(())
}
