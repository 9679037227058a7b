//! docker-compose.backup.yml on the dev stack: Postgres archiving through pgBackRest, the
//! backup service's first full backup, `slipway backup now|list`, and a repository that is
//! encrypted at rest.

use std::time::Duration;

use tokio::process::Command;

use crate::helpers::{Mode, PROJECT, Stack, binary, workspace};

/// `slipway args…` in the stack's folder, as its project: the output, and whether it succeeded.
pub async fn slipway(stack: &Stack, args: &[&str]) -> (bool, String) {
    let out = Command::new(binary("slipway"))
        .current_dir(&stack.dir)
        .env("COMPOSE_PROJECT_NAME", PROJECT)
        .args(args)
        .output()
        .await
        .expect("slipway runs");
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

/// A container's health: `healthy`, `unhealthy` or `starting`.
pub async fn health(container: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "--format", "{{.State.Health.Status}}", container])
        .output()
        .await
        .expect("docker inspect");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// slipway/postgres:15, built from this tree's docker/postgres.
pub async fn postgres_image() {
    let context = workspace().join("docker/postgres");
    let built = Command::new("docker")
        .args(["build", "-q", "-t", "slipway/postgres:15"])
        .arg(&context)
        .output()
        .await
        .expect("docker build");
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
}

/// `sh -c script` in a throwaway container with the repository volume at /repo, mounted
/// `mode` (`ro` or `rw`).
async fn in_repository(mode: &str, script: &str) -> String {
    let volume = format!("{PROJECT}_backups:/repo:{mode}");
    let out = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--user",
            "0",
            "--entrypoint",
            "sh",
            "-v",
            &volume,
            "slipway/postgres:15",
            "-c",
            script,
        ])
        .output()
        .await
        .expect("docker run");
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_service_archives_and_backs_up_encrypted_and_slipway_backup_takes_and_lists_backups() {
    let stack = Stack::prepare(Mode::Backup).await;
    postgres_image().await;
    // Healthy means the backup service has taken its first (full) backup.
    stack.up(&[]).await;

    let email = "backed-up@example.com";
    stack.signup(email).await;
    let (ok, said) = slipway(&stack, &["backup", "now"]).await;
    assert!(ok && said.contains("(incr) taken on this machine"), "{said}");
    let (ok, list) = slipway(&stack, &["backup", "list"]).await;
    assert!(ok, "{list}");
    let rows: Vec<&str> = list.lines().filter(|l| l.contains(" full ") || l.contains(" incr ")).collect();
    assert!(rows.len() == 2 && rows[0].contains(" full ") && rows[1].contains(" incr "), "{list}");
    assert!(list.contains("repository encrypted: aes-256-cbc"), "{list}");

    // Encrypted at rest: every file of the repository is OpenSSL-format ciphertext, and the
    // address signed up above appears in none.
    let plain = in_repository(
        "ro",
        "find /repo -type f | while read -r f; do [ \"$(head -c 8 \"$f\")\" = Salted__ ] || echo \"$f\"; done",
    )
    .await;
    assert_eq!(plain.trim(), "", "files not encrypted");
    let found = in_repository("ro", &format!("grep -rl '{email}' /repo || true")).await;
    assert_eq!(found.trim(), "", "the address in plain text");

    // Without its key, pgBackRest refuses instead of writing an unencrypted repository.
    let backup = stack.containers("backup").await.remove(0);
    let keyless = Command::new("docker")
        .args([
            "exec",
            "-e",
            "PGBACKREST_REPO1_CIPHER_PASS_FILE=/run/secrets/none",
            &backup,
            "slipway-pgbackrest",
            "info",
        ])
        .output()
        .await
        .expect("docker exec");
    let said = String::from_utf8_lossy(&keyless.stderr);
    assert!(
        !keyless.status.success() && said.contains("backup encryption key /run/secrets/none is missing"),
        "{said}"
    );

    // Point in time, with signups running through the API all along, one after another: a
    // full backup taken while they run, more signups, T marked between two of them, more
    // signups. `backup now` archives the WAL that holds them. Restored to T, the database has
    // exactly the users committed before T; restored to the newest commit, every one.
    let committed = tokio::sync::Mutex::new(0_usize);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let signups = async {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            // Held across the signup: whoever holds it sees no signup in flight.
            let mut done = committed.lock().await;
            stack.signup(&format!("pitr-{}@example.com", *done)).await;
            *done += 1;
        }
    };
    let more = async |than: usize| {
        testkit::eventually(Duration::from_secs(60), "more signups", async || {
            *committed.lock().await >= than + 3
        })
        .await;
    };
    let driver = async {
        more(0).await;
        let (ok, said) = slipway(&stack, &["backup", "now", "--full"]).await;
        assert!(ok && said.contains("(full) taken on this machine"), "{said}");
        let after_full = *committed.lock().await;
        more(after_full).await;
        let (t, before_t) = {
            let done = committed.lock().await;
            let t =
                stack.sql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US+00')").await;
            (t, *done)
        };
        more(before_t).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (t, before_t)
    };
    let ((), (t, before_t)) = tokio::join!(signups, driver);
    let total = *committed.lock().await;
    eprintln!("e2e: {total} signups through the API during the backups, T after the first {before_t}");
    let (ok, said) = slipway(&stack, &["backup", "now"]).await;
    assert!(ok, "{said}");
    let (ok, said) = slipway(&stack, &["backup", "restore", "--to", &t, "--keep"]).await;
    assert!(ok && said.contains(&format!("restored to {t} into volume")), "{said}");
    eprintln!("e2e: {said}");
    let scratch = said
        .lines()
        .find_map(|l| l.strip_prefix("the scratch Postgres "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("the kept scratch container: {said}"));
    let restored_users = Command::new("docker")
        .args(["exec", "--user", "postgres", &scratch, "psql", "-U", "slipway", "-d", "slipway", "-tAXc"])
        .arg("SELECT string_agg(email, ',' ORDER BY email) FROM auth.users WHERE email LIKE 'pitr-%'")
        .output()
        .await
        .expect("psql in the scratch container");
    let _ = Command::new("docker").args(["rm", "--force", &scratch]).output().await;
    let mut expected: Vec<String> = (0..before_t).map(|i| format!("pitr-{i}@example.com")).collect();
    expected.sort();
    assert_eq!(
        String::from_utf8_lossy(&restored_users.stdout).trim(),
        expected.join(","),
        "exactly the users committed before {t}"
    );
    let (ok, said) = slipway(&stack, &["backup", "restore", "--latest"]).await;
    let everyone = total + 1;
    assert!(ok && said.contains(&format!("auth.users: {everyone} rows")), "{said}");
    assert_eq!(
        stack.sql("SELECT count(*) FROM auth.users").await,
        everyone.to_string(),
        "the live database untouched"
    );
    let restored = Command::new("docker")
        .args(["volume", "ls", "-q", "--filter", &format!("name={PROJECT}_restored_")])
        .output()
        .await
        .expect("volumes");
    for volume in String::from_utf8_lossy(&restored.stdout).lines() {
        let _ = Command::new("docker").args(["volume", "rm", volume]).output().await;
    }

    // The restore drill passes on this repository, every check named.
    let (ok, said) = slipway(&stack, &["backup", "verify"]).await;
    eprintln!("e2e: {said}");
    assert!(ok && said.contains("verify passed: backup "), "{said}");
    for check in ["archive", "repository", "restore", "recovery", "amcheck", "migrations", "rows"] {
        assert!(said.contains(&format!("ok   {check}: ")), "{check}: {said}");
    }

    // In place: refused without confirmation, and nothing changed; confirmed, the live
    // database is back at T, the data from before is kept, and the stack serves again.
    let (ok, said) = slipway(&stack, &["backup", "restore", "--to", &t, "--in-place"]).await;
    assert!(!ok && said.contains("pass --yes to run without a terminal"), "{said}");
    assert_eq!(
        stack.sql("SELECT count(*) FROM auth.users").await,
        everyone.to_string(),
        "unconfirmed, nothing changed"
    );
    let (ok, said) = slipway(&stack, &["backup", "restore", "--to", &t, "--in-place", "--yes"]).await;
    eprintln!("e2e: {said}");
    let at_t = before_t + 1;
    assert!(
        ok && said.contains("in place on this machine") && said.contains(&format!("auth.users: {at_t} rows")),
        "{said}"
    );
    assert_eq!(
        stack.sql("SELECT count(*) FROM auth.users").await,
        at_t.to_string(),
        "the users committed before {t}"
    );
    let kept =
        said.lines().find_map(|l| l.strip_prefix("the current data is kept in volume ")).expect("kept");
    let listed = Command::new("docker").args(["volume", "inspect", kept]).output().await.expect("docker");
    assert!(listed.status.success(), "{kept} is kept");
    let _ = Command::new("docker").args(["volume", "rm", kept]).output().await;
    stack.signup("after-restore@example.com").await;

    // A file of the repository altered: the drill fails and names the check, and the backup
    // service turns unhealthy.
    in_repository(
        "rw",
        "f=$(find /repo/backup -path '*pg_data/base/*' -type f -size +1k | head -n 1) && \
         printf corrupt | dd of=\"$f\" bs=1 seek=100 conv=notrunc 2>/dev/null && echo \"$f\"",
    )
    .await;
    let (ok, said) = slipway(&stack, &["backup", "verify"]).await;
    eprintln!("e2e: {said}");
    assert!(!ok && said.contains("the restore drill failed at repository"), "{said}");
    testkit::eventually(Duration::from_secs(60), "the backup service unhealthy", async || {
        health(&backup).await == "unhealthy"
    })
    .await;

    // Outside such a stack, the command says what is missing.
    let (ok, said) = Command::new(binary("slipway"))
        .current_dir(&stack.dir)
        .env("COMPOSE_PROJECT_NAME", "no-such-project")
        .args(["backup", "list"])
        .output()
        .await
        .map(|o| (o.status.success(), String::from_utf8_lossy(&o.stderr).to_string()))
        .expect("slipway runs");
    assert!(
        !ok && said.contains("no backup service runs in the compose project or Swarm stack no-such-project"),
        "{said}"
    );
}
