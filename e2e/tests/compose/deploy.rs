//! `slipway deploy` to a second, real Docker engine reached over SSH (a network namespace of
//! the test's own with its own dockerd and sshd: testkit::remote).

use std::time::Duration;

use serde_json::json;
use testkit::remote::RemoteHost;
use tokio::process::Command;

use crate::helpers::{PASSWORD, TAG, binary, images, workspace};

struct Project {
    dir: std::path::PathBuf,
}

impl Project {
    /// The repository's compose files and `.env`, fresh secrets, and deploy.toml naming `host`.
    async fn new(host: &RemoteHost) -> Self {
        let dir = std::env::temp_dir().join(format!("slipway-deploy-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("project folder");
        for file in ["docker-compose.yml", "docker-compose.prod.yml", ".env"] {
            std::fs::copy(workspace().join(file), dir.join(file)).expect(file);
        }
        let toml = format!(
            "[destinations.remote]\nengine = \"{}\"\npublic_url = \"http://{}:8080\"\n",
            host.engine(),
            host.address
        );
        std::fs::write(dir.join("deploy.toml"), toml).expect("deploy.toml");
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
async fn a_first_deploy_over_ssh_ships_the_images_and_serves_the_journey_with_secrets_only_in_volumes() {
    images().await;
    let host = RemoteHost::start().await;
    let project = Project::new(&host).await;

    let deploy = project.slipway(&host, &["deploy", "remote", "--tag", TAG]).await;
    let said = text(&deploy);
    assert!(deploy.status.success(), "{said}\n{}", host_logs(&host).await);
    assert!(said.contains(&format!("slipway/auth:{TAG}: shipped to remote")), "{said}");
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
            "SELECT payload->>'activation_url' FROM bus.messages WHERE topic = 'auth.activation_requested'";
        link = host
            .docker_local(&[
                "exec",
                "slipway-postgres-1",
                "psql",
                "-U",
                "slipway",
                "-d",
                "slipway",
                "-tAc",
                sql,
            ])
            .await
            .unwrap_or_default();
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

    // The secrets reached the services only as files: no value in any container's
    // configuration, nor in the deploy's output.
    let key = std::fs::read_to_string(project.dir.join("secrets/auth_token_key")).expect("secret");
    let ids = host.docker_local(&["ps", "-aq"]).await.expect("ps");
    for id in ids.lines() {
        let inspect = host.docker_local(&["inspect", id]).await.unwrap_or_default();
        assert!(!inspect.contains(key.trim()), "a secret in `docker inspect` of {id}");
    }
    assert!(!said.contains(key.trim()), "a secret in the deploy's output");

    // A second deploy of the same release ships nothing and finds the lock free.
    let again = project.slipway(&host, &["deploy", "remote", "--tag", TAG]).await;
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains(&format!("slipway/auth:{TAG}: already on remote")), "{}", text(&again));
}

/// What went wrong on the host, for a failed assertion.
async fn host_logs(host: &RemoteHost) -> String {
    host.docker_local(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]).await.unwrap_or_default()
}
