//! `slipway deploy` to a second, real Docker engine reached over SSH (a network namespace of
//! the test's own with its own dockerd and sshd: testkit::remote).

use std::time::Duration;

use serde_json::json;
use testkit::load::{Counts, Load};
use testkit::remote::RemoteHost;
use tokio::io::AsyncBufReadExt as _;
use tokio::process::Command;

use crate::helpers::{PASSWORD, TAG, binary, images, workspace};

/// The images' namespace (`slipway/auth`).
const NS: &str = project::IMAGES;

struct Project {
    dir: std::path::PathBuf,
}

impl Project {
    /// The repository's compose files (backups included, as a project has them) and `.env`,
    /// fresh secrets, and deploy.toml naming `host`.
    async fn new(host: &RemoteHost) -> Self {
        let dir = std::env::temp_dir().join(format!("slipway-deploy-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("project folder");
        for file in ["docker-compose.yml", "docker-compose.prod.yml", "docker-compose.backup.yml", ".env"] {
            std::fs::copy(workspace().join(file), dir.join(file)).expect(file);
        }
        // `broken` is the same host with a web whose health check never passes.
        let toml = format!(
            "[destinations.remote]\nengine = \"{engine}\"\npublic_url = \"http://{ip}:8080\"\n\n\
             [destinations.broken]\nengine = \"{engine}\"\npublic_url = \"http://{ip}:8080\"\n\
             files = [\"docker-compose.yml\", \"docker-compose.prod.yml\", \"docker-compose.backup.yml\", \"broken.yml\"]\nhealth_timeout = \"40s\"\n",
            engine = host.engine(),
            ip = host.address
        );
        std::fs::write(dir.join("deploy.toml"), toml).expect("deploy.toml");
        let broken = "services:\n  web:\n    healthcheck:\n      test: [\"CMD\", \"web\", \"no-such-check\"]\n      interval: 1s\n";
        std::fs::write(dir.join("broken.yml"), broken).expect("broken.yml");
        let project = Self { dir };
        let out = project.slipway(host, &["env", "secrets", "--files", "secrets"]).await;
        assert!(out.status.success(), "{}", text(&out));
        project
    }

    async fn slipway(&self, host: &RemoteHost, args: &[&str]) -> std::process::Output {
        Command::new(binary("slipway"))
            .current_dir(&self.dir)
            .env("PATH", host.path())
            .args(args)
            .output()
            .await
            .expect("slipway runs")
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_over_ssh_ship_images_switch_releases_under_load_and_keep_the_old_release_when_the_new_fails()
{
    images().await;
    let host = RemoteHost::start().await;
    let project = Project::new(&host).await;

    let deploy = project.slipway(&host, &["deploy", "remote", "--tag", TAG]).await;
    let said = text(&deploy);
    assert!(deploy.status.success(), "{said}\n{}", host_logs(&host).await);
    assert!(said.contains(&format!("{NS}/auth:{TAG}: shipped to remote")), "{said}");
    assert!(said.contains(&format!("{TAG} is live on remote")), "{said}");

    // The journey through that host's gateway: signup → the emailed link → activate → login.
    let site = format!("http://{}:8080", host.address);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let email = "deployed@example.com";
    let signup = http
        .post(format!("{site}/api/auth/signup"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("signup");
    assert!(signup.status().is_success(), "signup: {}", signup.status());
    let mut link = String::new();
    testkit::eventually(Duration::from_secs(30), "the activation event on the bus", async || {
        let sql =
            "SELECT payload->>'activation_url' FROM bus.events WHERE topic = 'auth.activation_requested'";
        link = psql(&host, sql).await.unwrap_or_default();
        !link.is_empty()
    })
    .await;
    assert!(link.starts_with(&format!("{site}/activate?token=")), "links use the public URL: {link}");
    let token = link.rsplit('=').next().expect("a token");
    let activated =
        http.post(format!("{site}/api/auth/activation")).json(&json!({ "token": token })).send().await;
    assert_eq!(activated.expect("activation").status(), 200);
    let login = http
        .post(format!("{site}/api/auth/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);

    // Backups are on by default: the host's backup service took a full backup before the
    // first deploy called it healthy, and `slipway backup list -d remote` reads it over SSH.
    let listed = project.slipway(&host, &["backup", "list", "-d", "remote"]).await;
    let list = text(&listed);
    assert!(listed.status.success() && list.contains(" full "), "{list}");
    assert!(list.contains("repository encrypted: aes-256-cbc"), "{list}");

    // The secrets reached the services only as files: no value in any container's
    // configuration or log, in any process's command line on the host (its processes are
    // this machine's), or in the deploy's output.
    let processes = std::process::Command::new("ps").args(["-eo", "args"]).output().expect("ps").stdout;
    let processes = String::from_utf8_lossy(&processes).to_string();
    let socket = format!("unix://{}", host.dir().join("docker.sock").display());
    let ids = host.docker_local(&["ps", "-aq"]).await.expect("ps");
    for secret in std::fs::read_dir(project.dir.join("secrets")).expect("secrets").flatten() {
        let value = std::fs::read_to_string(secret.path()).expect("secret");
        let (name, value) = (secret.file_name().to_string_lossy().to_string(), value.trim().to_string());
        assert!(!said.contains(&value), "{name} in the deploy's output");
        assert!(!processes.contains(&value), "{name} in a process's command line");
        for id in ids.lines() {
            let inspect = host.docker_local(&["inspect", id]).await.unwrap_or_default();
            assert!(!inspect.contains(&value), "{name} in `docker inspect` of {id}");
            let logs =
                Command::new("docker").args(["--host", &socket, "logs", id]).output().await.expect("logs");
            let logs =
                format!("{}{}", String::from_utf8_lossy(&logs.stdout), String::from_utf8_lossy(&logs.stderr));
            assert!(!logs.contains(&value), "{name} in the log of {id}");
        }
    }

    // The next release under load: every request through the switch is answered, and the
    // services answer as the new release once it is done.
    assert_eq!(release_of(&http, &format!("{site}/api/auth/healthz")).await, TAG);
    retag("v2").await;
    let load = steady_load(&site);
    let next = project.slipway(&host, &["deploy", "remote", "--tag", "v2"]).await;
    let Counts { answered, errors, dropped } = load.stop().await;
    assert!(next.status.success(), "{}\n{}", text(&next), host_logs(&host).await);
    assert!(text(&next).contains(&format!("{NS}/auth:v2: shipped to remote")), "{}", text(&next));
    assert!(
        text(&next).contains("auth: 2 new instance(s) healthy and in rotation, 2 old stopped"),
        "{}",
        text(&next)
    );
    assert!(text(&next).contains("gateway: 1 new instance(s) healthy, 1 old stopped"), "{}", text(&next));
    eprintln!(
        "e2e: {answered} requests during the deploy of v2: {errors} error responses, {dropped} dropped"
    );
    assert!(answered > 100, "the load ran through the deploy: {answered}");
    assert_eq!(
        (errors, dropped),
        (0, 0),
        "no request failed while the services and the gateway itself were replaced"
    );
    assert_eq!(release_of(&http, &format!("{site}/api/auth/healthz")).await, "v2");
    assert_eq!(release_of(&http, &format!("{site}/healthz")).await, "v2");

    // What runs there: every instance of the new release, healthy and in rotation.
    let status = project.slipway(&host, &["status", "remote", "--json"]).await;
    assert!(status.status.success(), "{}", text(&status));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["live"]["release"], "v2", "{status}");
    let auth = status["services"].as_array().into_iter().flatten().find(|s| s["service"] == "auth");
    let auth = auth.cloned().unwrap_or_default();
    assert_eq!(
        (&auth["release"], &auth["healthy"], &auth["total"], &auth["in_rotation"]),
        (&json!("v2"), &json!(2), &json!(2), &json!(2)),
        "{status}"
    );
    // One request's lines, found by its id among every service's logs.
    let id = format!("e2e-{}", uuid::Uuid::new_v4().simple());
    let asked = http.get(format!("{site}/api/auth/healthz")).header("x-request-id", &id).send().await;
    assert_eq!(asked.expect("asked").status(), 200);
    testkit::eventually(Duration::from_secs(20), "the request's access line in the logs", async || {
        let logs = project.slipway(&host, &["logs", "remote", "--request-id", &id]).await;
        let said = text(&logs);
        said.lines().any(|l| l.starts_with("slipway-gateway-") && l.contains(" access ") && l.contains(&id))
    })
    .await;

    // A release whose web never becomes healthy: the deploy fails within its timeout naming
    // web, every new container is removed, and v2 keeps serving every request.
    retag("v3").await;
    let load = steady_load(&site);
    let failed = project.slipway(&host, &["deploy", "broken", "--tag", "v3"]).await;
    let Counts { answered, errors, dropped } = load.stop().await;
    let said = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{said}");
    assert!(said.contains("the new release of web was not healthy and in rotation within 40s"), "{said}");
    assert!(said.contains("last health check") && said.contains("the old release keeps serving"), "{said}");
    assert!(!said.contains("is live"), "nothing reported as success: {said}");
    eprintln!(
        "e2e: {answered} requests during the failed deploy of v3: {errors} error responses, {dropped} dropped"
    );
    assert_eq!((errors, dropped), (0, 0), "v2 served every request while v3 failed");
    assert_eq!(
        release_of(&http, &format!("{site}/api/auth/healthz")).await,
        "v2",
        "auth's v3 was removed too"
    );
    assert_eq!(release_of(&http, &format!("{site}/healthz")).await, "v2");

    // Back to the release before v2, under load, through the same switch.
    let load = steady_load(&site);
    let back = project.slipway(&host, &["rollback", "remote", "--json"]).await;
    let Counts { answered, errors, dropped } = load.stop().await;
    assert!(back.status.success(), "{}\n{}", text(&back), host_logs(&host).await);
    // With --json, every step is one JSON object per line, for CI.
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&back.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"start"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"live"), "{kinds:?}");
    assert!(kinds.contains(&"switched") && events.iter().all(|e| e["elapsed_s"].is_number()), "{events:?}");
    assert_eq!(events[0]["message"], format!("slipway: rolling back to {TAG} on remote ({})", host.engine()));
    eprintln!("e2e: {answered} requests during the rollback: {errors} error responses, {dropped} dropped");
    assert_eq!((errors, dropped), (0, 0), "no request failed during the rollback");
    assert_eq!(release_of(&http, &format!("{site}/api/auth/healthz")).await, TAG);

    // The history is on the host: every deploy and rollback, with its outcome.
    let history = project.slipway(&host, &["releases", "remote"]).await;
    let lines: Vec<String> = text(&history).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[0].starts_with(TAG) && lines[0].contains("rollback") && lines[0].contains("live, replaced v2"),
        "{lines:?}"
    );
    assert!(lines[1].starts_with("v3") && lines[1].contains("failed: the new release of web"), "{lines:?}");
    assert!(lines[2].starts_with("v2") && lines[2].contains("live, replaced e2e"), "{lines:?}");

    // A deploy killed halfway (SIGKILL in the middle of the switch): the site keeps serving,
    // the lock goes with its holder, and a re-run completes the release.
    let mut killed = Command::new(binary("slipway"))
        .current_dir(&project.dir)
        .env("PATH", host.path())
        .args(["deploy", "remote", "--tag", "v2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the deploy starts");
    let mut said = tokio::io::BufReader::new(killed.stdout.take().expect("stdout")).lines();
    loop {
        match said.next_line().await.expect("the deploy's output") {
            Some(line) if line.contains("new instance(s) started beside") => break,
            Some(_) => {}
            None => panic!("the deploy ended before its switch"),
        }
    }
    killed.start_kill().expect("SIGKILL");
    let _ = killed.wait().await;
    let serving = release_of(&http, &format!("{site}/api/auth/healthz")).await;
    assert!(serving == TAG || serving == "v2", "the site keeps serving: {serving}");
    testkit::eventually(Duration::from_secs(30), "the killed deploy's lock gone", async || {
        text(&project.slipway(&host, &["lock", "status", "remote"]).await).contains("remote: not held")
    })
    .await;
    // The re-run also rotates the database owner's password: a new secret file, which the
    // migrations (connecting as the owner) could not use had the database not been told.
    std::fs::remove_file(project.dir.join("secrets/database_password")).expect("remove the old password");
    let made = project.slipway(&host, &["env", "secrets", "--files", "secrets"]).await;
    assert!(made.status.success(), "{}", text(&made));
    let rerun = project.slipway(&host, &["deploy", "remote", "--tag", "v2"]).await;
    assert!(rerun.status.success(), "{}\n{}", text(&rerun), host_logs(&host).await);
    assert!(text(&rerun).contains("postgres: the owner's password set from"), "{}", text(&rerun));
    let status = project.slipway(&host, &["status", "remote", "--json"]).await;
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    for service in status["services"].as_array().into_iter().flatten() {
        if ["auth", "web", "mailer", "gateway"].contains(&service["service"].as_str().unwrap_or_default()) {
            assert_eq!(service["release"], "v2", "no container of the killed deploy is left over: {status}");
            assert_eq!(service["healthy"], service["total"], "{status}");
        }
    }

    // A migration that fails (its tables exist, but its record is gone): nothing is switched,
    // and the message names the migration's file.
    let forget = "DELETE FROM auth.schema_migrations WHERE version = (SELECT max(version) FROM auth.schema_migrations)";
    psql(&host, forget).await.expect("forget a migration");
    let failed = project.slipway(&host, &["deploy", "remote", "--tag", "v3"]).await;
    let said = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{said}");
    assert!(
        said.contains("migrate (the new release's one-shot) failed")
            && said.contains("services/auth/migrations/"),
        "{said}"
    );
    assert_eq!(release_of(&http, &format!("{site}/api/auth/healthz")).await, "v2", "nothing switched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_with_a_registry_gets_the_release_pushed_there_and_pulls_it() {
    images().await;
    let host = RemoteHost::start().await;
    let registry = testkit::registry::Registry::start(host.peer_address().into()).await;
    let project = Project::new(&host).await;
    let toml = format!(
        "\n[destinations.pulled]\nengine = \"{}\"\npublic_url = \"http://{}:8080\"\nregistry = \"{}/e2e\"\n",
        host.engine(),
        host.address,
        registry.addr
    );
    let mut file =
        std::fs::OpenOptions::new().append(true).open(project.dir.join("deploy.toml")).expect("toml");
    std::io::Write::write_all(&mut file, toml.as_bytes()).expect("append");

    let deploy = project.slipway(&host, &["deploy", "pulled", "--tag", TAG]).await;
    let said = text(&deploy);
    assert!(deploy.status.success(), "{said}\n{}\n{}", host_logs(&host).await, registry.log());
    let pushed = format!("{NS}/auth:{TAG}: pushed to {}/e2e and pulled by pulled", registry.addr);
    assert!(said.contains(&pushed), "{said}");
    let held = registry.repositories();
    // Postgres's image too: slipway/postgres (pgBackRest inside), since backups are on.
    for repo in ["e2e/slipway/auth", "e2e/slipway/gateway", "e2e/slipway/web", "e2e/slipway/postgres"] {
        assert!(held.iter().any(|r| r == repo), "{repo} in the registry: {held:?}");
    }
    // The host runs the images under the names the compose files use, and serves.
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let site = format!("http://{}:8080", host.address);
    assert_eq!(release_of(&http, &format!("{site}/api/auth/healthz")).await, TAG);
    let tags =
        host.docker_local(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).await.unwrap_or_default();
    assert!(tags.lines().any(|t| t == format!("{NS}/auth:{TAG}")), "{tags}");
    assert!(!tags.contains(&registry.addr), "the registry's names are not left on the host: {tags}");
}

/// Tags this run's images as release `tag` too (the same contents under another name).
async fn retag(tag: &str) {
    for name in ["auth", "mailer", "web", "gateway", "slipway"] {
        testkit::docker::docker(&["tag", &format!("{NS}/{name}:{TAG}"), &format!("{NS}/{name}:{tag}")]).await;
    }
}

/// The release a service's `/healthz` names.
async fn release_of(http: &reqwest::Client, url: &str) -> String {
    let body: serde_json::Value = http.get(url).send().await.expect("healthz").json().await.expect("JSON");
    body["release"].as_str().unwrap_or("none").to_string()
}

/// Four clients asking auth and web through the gateway until stopped.
fn steady_load(site: &str) -> Load {
    Load::start(&[format!("{site}/api/auth/healthz"), format!("{site}/healthz")], 4)
}

/// One statement through psql in the host's Postgres container: its output, unaligned.
async fn psql(host: &RemoteHost, sql: &str) -> Option<String> {
    let args = ["exec", "slipway-postgres-1", "psql", "-U", "slipway", "-d", "slipway", "-tAc", sql];
    host.docker_local(&args).await
}

/// What went wrong on the host, for a failed assertion.
async fn host_logs(host: &RemoteHost) -> String {
    let ps = host.docker_local(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]).await.unwrap_or_default();
    format!("--- containers\n{ps}\n{}", host.logs())
}
