//! docker-compose.backup-s3.yml: the repository in S3-compatible object storage (moto's
//! server, over TLS); an outage of that storage is loud and loses nothing; a backup killed
//! midway leaves a repository the next backup and the restore drill accept; and the commits
//! lost with the host under steady writes are measured.

use std::time::Duration;

use testkit::s3::S3Server;

use crate::backup::{health, postgres_image, slipway};
use crate::helpers::{Mode, Stack, host_gateway};

const BUCKET: &str = "slipway-backups";

/// The test's additions: the storage's address in .env, its credentials as secrets, its
/// certificate trusted by the containers that reach it, and pgBackRest's I/O timeout at 10 s
/// instead of 60 so an outage shows sooner.
fn configure(stack: &Stack, s3: &S3Server) {
    let env = stack.dir.join(".env");
    let mut text = std::fs::read_to_string(&env).expect(".env");
    text.push_str(&format!(
        "\nSLIPWAY_BACKUP_S3_ENDPOINT=host.docker.internal\nSLIPWAY_BACKUP_S3_PORT={}\n\
         SLIPWAY_BACKUP_S3_BUCKET={BUCKET}\nSLIPWAY_BACKUP_S3_URI_STYLE=path\n",
        s3.port()
    ));
    std::fs::write(&env, text).expect(".env");
    std::fs::write(stack.dir.join("secrets/backup_s3_key"), "test-access-key\n").expect("secret");
    std::fs::write(stack.dir.join("secrets/backup_s3_key_secret"), "test-secret-key\n").expect("secret");
    std::fs::copy(&s3.ca, stack.dir.join("s3-ca.crt")).expect("ca");
    let service = "    extra_hosts: [\"host.docker.internal:host-gateway\"]\n    \
                   volumes: [\"./s3-ca.crt:/etc/ssl/certs/s3-test-ca.crt:ro\"]\n    \
                   environment: { PGBACKREST_REPO1_STORAGE_CA_FILE: /etc/ssl/certs/s3-test-ca.crt, \
                   PGBACKREST_IO_TIMEOUT: \"10\" }\n";
    std::fs::write(
        stack.dir.join("s3.yml"),
        format!("services:\n  postgres:\n{service}  backup:\n{service}"),
    )
    .expect("s3.yml");
}

/// The processes of a container: host pid, seconds running, and command line.
async fn processes(container: &str) -> Vec<(String, u64, String)> {
    let out = tokio::process::Command::new("docker")
        .args(["top", container, "-eo", "pid,etimes,args"])
        .output()
        .await
        .expect("docker top");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let (pid, seconds) = (words.next()?, words.next()?.parse().ok()?);
            Some((pid.to_string(), seconds, words.collect::<Vec<_>>().join(" ")))
        })
        .collect()
}

async fn archiver_failures(stack: &Stack) -> u64 {
    stack.sql("SELECT failed_count FROM pg_stat_archiver").await.parse().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_go_to_object_storage_and_an_outage_there_is_loud_and_loses_nothing() {
    let stack = Stack::prepare(Mode::BackupS3).await;
    postgres_image().await;
    let s3 = S3Server::start(host_gateway().await, &["host.docker.internal"], BUCKET).await;
    configure(&stack, &s3);
    // Healthy means the backup service has taken its first (full) backup, into the bucket.
    stack.up(&[]).await;
    stack.signup("before-outage@example.com").await;
    let (ok, said) = slipway(&stack, &["backup", "now"]).await;
    assert!(ok, "{said}\n{}", s3.log());
    let (ok, list) = slipway(&stack, &["backup", "list"]).await;
    assert!(ok && list.contains(" full ") && list.contains(" incr "), "{list}");

    // The storage unreachable: Postgres keeps taking writes, archiving fails and says so,
    // a backup fails with a clear message, and the backup service turns unhealthy.
    s3.cut();
    let failures = archiver_failures(&stack).await;
    for n in 0..3 {
        stack.signup(&format!("during-outage-{n}@example.com")).await;
    }
    stack.sql("SELECT pg_switch_wal()").await;
    testkit::eventually(Duration::from_secs(120), "archiving to fail", async || {
        archiver_failures(&stack).await > failures
    })
    .await;
    let (ok, said) = slipway(&stack, &["backup", "now"]).await;
    eprintln!("e2e: {said}");
    assert!(!ok && said.contains("the incr backup failed on this machine"), "{said}");
    assert!(said.contains("host.docker.internal"), "the message names the storage: {said}");
    let backup = stack.containers("backup").await.remove(0);
    testkit::eventually(Duration::from_secs(60), "the backup service unhealthy", async || {
        health(&backup).await == "unhealthy"
    })
    .await;

    // Back: the next backup succeeds (it waits for the WAL it needs, archived in order), the
    // service is healthy again, and a restore to the newest commit has every user.
    s3.restore();
    let (ok, said) = slipway(&stack, &["backup", "now"]).await;
    assert!(ok, "{said}");
    testkit::eventually(Duration::from_secs(60), "the backup service healthy", async || {
        health(&backup).await == "healthy"
    })
    .await;
    let (ok, said) = slipway(&stack, &["backup", "restore", "--latest"]).await;
    eprintln!("e2e: {said}");
    assert!(ok && said.contains("auth.users: 4 rows"), "{said}");

    // A full backup SIGKILLed while it copies files: the next one succeeds, and the restore
    // drill passes on the repository it leaves.
    stack
        .sql("CREATE TABLE public.ballast AS SELECT g, repeat(md5(g::text), 8) AS filler FROM generate_series(1, 300000) g")
        .await;
    let killed = tokio::spawn({
        let dir = stack.dir.clone();
        async move {
            let out = tokio::process::Command::new(crate::helpers::binary("slipway"))
                .current_dir(dir)
                .env("COMPOSE_PROJECT_NAME", crate::helpers::PROJECT)
                .args(["backup", "now", "--full"])
                .output()
                .await
                .expect("slipway runs");
            (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
        }
    });
    // Killed, with every pgBackRest process of the container, once it has run a second (its
    // files take several seconds to copy).
    testkit::eventually(Duration::from_secs(60), "a backup copying files, then killed", async || {
        let top = processes(&backup).await;
        let copying =
            top.iter().any(|(_, seconds, args)| *seconds >= 1 && args.starts_with("pgbackrest backup"));
        if copying {
            for (pid, _, _) in top.iter().filter(|(_, _, args)| args.contains("pgbackrest")) {
                let _ = tokio::process::Command::new("kill").args(["-KILL", pid]).output().await;
            }
        }
        copying
    })
    .await;
    testkit::eventually(Duration::from_secs(30), "no pgBackRest process left", async || {
        !processes(&backup).await.iter().any(|(_, _, args)| args.contains("pgbackrest"))
    })
    .await;
    let (ok, said) = killed.await.expect("the killed backup's command");
    assert!(!ok, "the killed backup failed: {said}");
    let (ok, said) = slipway(&stack, &["backup", "now", "--full"]).await;
    assert!(ok, "the next backup: {said}");
    let (ok, said) = slipway(&stack, &["backup", "verify"]).await;
    eprintln!("e2e: {said}");
    assert!(ok && said.contains("verify passed"), "{said}");

    // Loss under steady writes (RPO): a row committed every 50 ms for 75 s, then Postgres
    // killed, as a lost host would be; restored to the newest archived commit, the rows
    // missing are the commits of the last seconds, at most archive_timeout's worth.
    stack.sql("CREATE TABLE public.heartbeat (at timestamptz NOT NULL DEFAULT clock_timestamp())").await;
    stack
        .sql(
            "DO $$ BEGIN FOR i IN 1..1500 LOOP INSERT INTO public.heartbeat DEFAULT VALUES; COMMIT; \
              PERFORM pg_sleep(0.05); END LOOP; END $$",
        )
        .await;
    let last = stack.sql("SELECT extract(epoch FROM max(at)) FROM public.heartbeat").await;
    let postgres = stack.containers("postgres").await.remove(0);
    for args in [&["update", "--restart", "no", &postgres][..], &["kill", &postgres]] {
        let out = tokio::process::Command::new("docker").args(args).output().await.expect("docker");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let (ok, said) = slipway(&stack, &["backup", "restore", "--latest", "--keep"]).await;
    assert!(ok, "{said}");
    let scratch =
        said.lines().find_map(|l| l.strip_prefix("the scratch Postgres ")).and_then(|l| l.split(' ').next());
    let scratch = scratch.expect("the scratch Postgres's name").to_string();
    let query =
        "SELECT count(*) || ' ' || coalesce(extract(epoch FROM max(at))::text, '0') FROM public.heartbeat";
    let out = tokio::process::Command::new("docker")
        .args([
            "exec", "--user", "postgres", &scratch, "psql", "-U", "slipway", "-d", "slipway", "-tAXc", query,
        ])
        .output()
        .await
        .expect("docker exec");
    let _ = tokio::process::Command::new("docker").args(["rm", "--force", &scratch]).output().await;
    let restored = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (rows, newest) = restored.split_once(' ').expect("count and newest");
    let lost = last.parse::<f64>().expect("last") - newest.parse::<f64>().expect("newest");
    eprintln!(
        "e2e: RPO under steady writes: {rows} of 1500 rows restored, the last {lost:.1} s of commits lost"
    );
    assert!(lost <= 60.0, "lost {lost:.1} s of commits; archive_timeout promises at most 60 s");

    let volumes = tokio::process::Command::new("docker")
        .args(["volume", "ls", "-q", "--filter", &format!("name={}_restored_", crate::helpers::PROJECT)])
        .output()
        .await
        .expect("volumes");
    for volume in String::from_utf8_lossy(&volumes.stdout).lines() {
        let _ = tokio::process::Command::new("docker").args(["volume", "rm", volume]).output().await;
    }
}
