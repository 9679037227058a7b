//! The prod files on Docker Swarm through `slipway stack deploy`, on a one-node swarm, with
//! backups: Postgres and the backup service on the node it labels, `slipway backup` finding
//! the stack's backup task.

use std::time::Duration;

use testkit::docker::docker;
use testkit::eventually;

use crate::backup::postgres_image;
use crate::helpers::{GATEWAY, Mode, Stack, binary};

const STACK: &str = "slipway-e2e-swarm";

/// This machine's kernel has no IPVS, which Swarm's virtual IPs and ingress mesh need, so the
/// test lays DNS round robin and a host-mode port over the prod files (a site-specific file,
/// as `--file` is for). Everything else is the prod stack as written.
const NO_IPVS: &str = "services:
  auth: { deploy: { endpoint_mode: dnsrr } }
  mailer: { deploy: { endpoint_mode: dnsrr } }
  web: { deploy: { endpoint_mode: dnsrr } }
  postgres: { deploy: { endpoint_mode: dnsrr } }
  backup: { deploy: { endpoint_mode: dnsrr } }
  migrate: { deploy: { endpoint_mode: dnsrr } }
  docker-proxy: { deploy: { endpoint_mode: dnsrr } }
  gateway:
    deploy: { endpoint_mode: dnsrr }
    ports: [{ target: 8080, published: 8080, mode: host }]
";

/// Removes the stack and its volume (`stack rm` keeps volumes: the next run's fresh
/// password would meet the old database), and leaves the swarm if the test made it.
struct Swarm {
    made: bool,
}

impl Swarm {
    fn remove_stack() {
        let _ = std::process::Command::new("docker").args(["stack", "rm", STACK]).output();
        // Containers go after the services; wait so the next test finds port 8080 free.
        for _ in 0..60 {
            let out = std::process::Command::new("docker")
                .args(["ps", "-aq", "--filter", &format!("label=com.docker.stack.namespace={STACK}")])
                .output();
            if out.is_ok_and(|o| o.stdout.is_empty()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        // The stack's volumes and the ones `slipway backup restore` made.
        let listed = std::process::Command::new("docker")
            .args(["volume", "ls", "--quiet", "--filter", &format!("name={STACK}_")])
            .output();
        let listed = listed.map(|o| String::from_utf8_lossy(&o.stdout).to_string()).unwrap_or_default();
        for volume in listed.lines() {
            let _ = std::process::Command::new("docker").args(["volume", "rm", "-f", volume]).output();
        }
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        Self::remove_stack();
        if self.made {
            let _ = std::process::Command::new("docker").args(["swarm", "leave", "--force"]).output();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_swarm_runs_the_prod_stack_from_slipway_stack_deploy() {
    let stack = Stack::prepare(Mode::Prod).await;
    postgres_image().await;
    let active = docker(&["info", "-f", "{{.Swarm.LocalNodeState}}"]).await == "active";
    if !active {
        docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]).await;
    }
    let _swarm = Swarm { made: !active };
    Swarm::remove_stack();
    std::fs::write(stack.dir.join("no-ipvs.yml"), NO_IPVS).expect("overlay");
    let out = tokio::process::Command::new(binary("slipway"))
        .current_dir(&stack.dir)
        .args(["stack", "deploy", STACK, "--file", "no-ipvs.yml"])
        .env("SLIPWAY_TAG", "e2e")
        .env("SLIPWAY_PUBLIC_URL", GATEWAY)
        .env("DOCKER_GID", &stack.docker_gid)
        .output()
        .await
        .expect("slipway stack deploy");
    assert!(out.status.success(), "slipway stack deploy: {}", String::from_utf8_lossy(&out.stderr));

    let wanted = ["auth 2/2", "backup 1/1", "gateway 1/1", "mailer 2/2", "postgres 1/1", "web 2/2"];
    let filter = format!("label=com.docker.stack.namespace={STACK}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let listed =
            docker(&["service", "ls", "--filter", &filter, "--format", "{{.Name}} {{.Replicas}}"]).await;
        let prefix = format!("{STACK}_");
        if wanted.iter().all(|w| listed.lines().any(|l| l.strip_prefix(&prefix) == Some(*w))) {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            let tasks = docker(&["stack", "ps", STACK]).await;
            panic!("the services did not reach their replica counts:\n{listed}\n{tasks}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eventually(Duration::from_secs(120), "the site through the gateway", async || {
        let res = stack.http.get(format!("{GATEWAY}/")).send().await;
        res.is_ok_and(|r| r.status() == 200)
    })
    .await;
    let email = "swarm@example.com";
    stack.signup(email).await;
    assert_eq!(stack.login(email).await.0, 403, "an account starts unactivated, in the stack's Postgres");
    let migrate = docker(&["service", "logs", "--raw", &format!("{STACK}_migrate")]).await;
    assert!(migrate.contains("auth:"), "the one-shot migrate task ran: {migrate}");

    // Postgres's volumes are local to a node: the deploy labelled the only one for it.
    let label =
        docker(&["node", "inspect", "self", "--format", "{{index .Spec.Labels \"slipway.postgres\"}}"]).await;
    assert_eq!(label, "true", "the swarm's only node is labelled for Postgres");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("labelled slipway.postgres=true"), "the deploy says where Postgres runs: {said}");

    // Backups: the stack's backup task took its first full backup (it is healthy only then);
    // the CLI finds it by the stack's name and takes an incremental one.
    let healthy = ["ps", "--quiet", "--filter", "health=healthy", "--filter"];
    let task = format!("label=com.docker.swarm.service.name={STACK}_backup");
    eventually(Duration::from_secs(120), "the backup task healthy (its first full backup)", async || {
        !docker(&[&healthy[..], &[task.as_str()]].concat()).await.is_empty()
    })
    .await;
    let (ok, said) = slipway(&stack.dir, &["backup", "now"]).await;
    assert!(ok, "slipway backup now on the stack: {said}");
    let (ok, listed) = slipway(&stack.dir, &["backup", "list"]).await;
    assert!(
        ok && listed.contains(" full ") && listed.contains(" incr "),
        "a full and an incremental backup: {listed}"
    );
    let (ok, restored) = slipway(&stack.dir, &["backup", "restore", "--latest"]).await;
    assert!(ok, "slipway backup restore --latest from the stack's repository: {restored}");
    let signed_up = restored.contains("auth.users: ") && !restored.contains("auth.users: 0 rows");
    assert!(signed_up, "the signup is in the restore: {restored}");
    let (ok, refused) = slipway(&stack.dir, &["backup", "restore", "--latest", "--in-place", "--yes"]).await;
    assert!(!ok && refused.contains("not built for Swarm"), "--in-place refuses on Swarm: {refused}");
}

/// `slipway args…` in the project folder, the stack's name as its project: whether it
/// succeeded, and what it said.
async fn slipway(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(binary("slipway"))
        .current_dir(dir)
        .env("COMPOSE_PROJECT_NAME", STACK)
        .args(args)
        .output()
        .await
        .expect("slipway runs");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), said)
}
