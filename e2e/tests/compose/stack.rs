//! One stack's life, in the order a user lives it: up, the journey, scaling, an instance
//! killed under load, a crash the restart policy repairs, down and up again, down -v.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use testkit::docker::docker;
use testkit::eventually;

use crate::helpers::{GATEWAY, Mode, Stack};

const SOON: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_compose_stack_comes_up_healthy_scales_survives_kills_and_keeps_users_on_its_volume() {
    let stack = Stack::prepare(Mode::Dev).await;

    // Up: every container healthy (migrate completed), the site answers through the gateway.
    let took = stack.up(&[]).await;
    eprintln!("e2e: up -d --wait reached all-healthy in {took:.1?} (images warm)");
    let page = stack.http.get(format!("{GATEWAY}/")).send().await.expect("GET /");
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap_or("").starts_with("text/html"));

    // The journey through the gateway: signup → email → activate → login → me.
    let first = "first@example.com";
    stack.signup(first).await;
    let token = stack.activation_token(first).await;
    assert_eq!(stack.post("/api/auth/activation", json!({ "token": token })).await.status(), 200);
    let (status, access) = stack.login(first).await;
    assert_eq!(status, 200, "login after activation");
    let me = stack
        .http
        .get(format!("{GATEWAY}/api/auth/me"))
        .bearer_auth(access.expect("an access token"))
        .send()
        .await
        .expect("GET me");
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<serde_json::Value>().await.expect("json")["email"], first);

    // Each service connects as its own role, and holds only its own secrets.
    let users = stack
        .sql("SELECT string_agg(DISTINCT application_name || '=' || usename, ',' ORDER BY application_name || '=' || usename) \
              FROM pg_stat_activity WHERE application_name IN ('auth', 'mailer', 'web')")
        .await;
    assert_eq!(users, "auth=slipway_auth,mailer=slipway_mailer,web=slipway_web");
    let web = stack.containers("web").await.remove(0);
    let mounts = docker(&["inspect", "-f", "{{json .Mounts}}", &web]).await;
    assert!(mounts.contains("/run/secrets/web_cookie_key"), "{mounts}");
    for other in
        ["auth_token_key", "auth_jwt_key", "/run/secrets/database_password", "auth_database_password"]
    {
        assert!(!mounts.contains(other), "web is not given {other}: {mounts}");
    }

    // Scaled: three auth instances share the requests, three mailers send each email once.
    stack.up(&["--scale", "auth=3", "--scale", "mailer=3"]).await;
    eventually(SOON, "the gateway to route to three auth instances", async || {
        stack.available("auth").await == 3
    })
    .await;
    for _ in 0..60 {
        let res = stack.http.get(format!("{GATEWAY}/api/auth/.well-known/jwks.json")).send().await;
        assert_eq!(res.expect("jwks").status(), 200);
    }
    let counts: Vec<u64> =
        stack.instances("auth").await.iter().map(|i| i["requests"].as_u64().unwrap_or(0)).collect();
    eprintln!("e2e: 60 requests over three auth instances: {counts:?}");
    assert!(counts.len() == 3 && counts.iter().all(|&n| n >= 5), "requests per auth instance: {counts:?}");

    let emails: Vec<String> = (0..15).map(|i| format!("user{i}@example.com")).collect();
    for e in &emails {
        stack.signup(e).await;
    }
    eventually(SOON, "an email to each of the 15", async || {
        emails.iter().all(|e| !stack.mails_to(e).is_empty())
    })
    .await;
    eventually(SOON, "the mailers to finish every delivery", async || {
        stack.sql("SELECT count(*) FROM bus.deliveries WHERE group_name = 'mailer'").await == "0"
    })
    .await;
    for e in &emails {
        assert_eq!(stack.mails_to(e).len(), 1, "{e} got exactly one email from three mailers");
    }

    // `docker kill` of one auth instance under a steady load: no request fails.
    let load = Load::start(&stack);
    load.await_count(100).await;
    let victim = stack.containers("auth").await.remove(0);
    docker(&["kill", &victim]).await;
    load.await_count(load.done() + 300).await;
    // A crash (the process SIGKILLed behind Docker's back, as the OOM killer does): no request
    // fails, and the restart policy brings the instance back.
    let crashing = stack.containers("auth").await.remove(0);
    let pid = docker(&["inspect", "-f", "{{.State.Pid}}", &crashing]).await;
    let pid = nix::unistd::Pid::from_raw(pid.parse().expect("a process id"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("kill the container's process");
    load.await_count(load.done() + 300).await;
    let (ok, failed) = load.stop().await;
    eprintln!("e2e: {ok} requests answered, {failed} failed, across a docker kill and a crash");
    assert_eq!(failed, 0, "{failed} of {} requests failed while instances were killed", ok + failed);
    eventually(SOON, "the restart policy to restart the crashed instance", async || {
        docker(&["inspect", "-f", "{{.RestartCount}} {{.State.Health.Status}}", &crashing]).await
            == "1 healthy"
    })
    .await;
    // `docker kill` is a deliberate stop, which Docker's restart policies leave stopped;
    // `up` brings the service back to its scale.
    stack.up(&["--scale", "auth=3", "--scale", "mailer=3"]).await;
    eventually(SOON, "three auth instances again", async || stack.available("auth").await == 3).await;

    // down, then up: the users are still there (the named volume).
    stack.compose(&["down"]).await;
    stack.up(&[]).await;
    assert_eq!(stack.login(first).await.0, 200, "the user survives down/up");

    // down -v removes the volume, and the users with it.
    stack.compose(&["down", "-v"]).await;
    let volumes = docker(&["volume", "ls", "-q", "--filter", "name=slipway-e2e_postgres-data"]).await;
    assert!(volumes.is_empty(), "the volume is gone: {volumes}");
    stack.up(&[]).await;
    assert_eq!(stack.login(first).await.0, 401, "a fresh database knows no one");
}

/// Four clients sending GETs through the gateway in a loop, counting answers.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(stack: &Stack) -> Self {
        let (stop, ok, failed) = (Arc::default(), Arc::default(), Arc::default());
        let tasks = (0..4)
            .map(|_| {
                let (stop, ok, failed): (Arc<AtomicBool>, Arc<AtomicUsize>, Arc<AtomicUsize>) =
                    (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
                let http = stack.http.clone();
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let res = http.get(format!("{GATEWAY}/api/auth/.well-known/jwks.json")).send().await;
                        match res {
                            Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                            Ok(r) => {
                                // The problem's type says who refused it: the gateway or auth.
                                let status = r.status();
                                let body = r.text().await.unwrap_or_default();
                                eprintln!("e2e: load got {status}: {body}");
                                failed.fetch_add(1, Ordering::Relaxed)
                            }
                            Err(e) => {
                                eprintln!("e2e: load failed: {e}");
                                failed.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                    }
                })
            })
            .collect();
        Self { stop, ok, failed, tasks }
    }

    fn done(&self) -> usize {
        self.ok.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }

    async fn await_count(&self, n: usize) {
        eventually(SOON, &format!("{n} requests of the load"), async || self.done() >= n).await;
    }

    async fn stop(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("load task");
        }
        (self.ok.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }
}
