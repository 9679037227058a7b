//! The stack under test: images built from this run's binaries through the project's own
//! Dockerfile, a project folder of its own (compose files, `.env`, the secret files made by
//! `slipway env secrets --files`), an SMTP sink on the Docker bridge for the mailers, typed helpers.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::smtp::SmtpSink;
use tokio::process::Command;

pub const GATEWAY: &str = "http://127.0.0.1:8080";
const ADMIN: &str = "http://127.0.0.1:9090";
pub const PROJECT: &str = "slipway-e2e";
pub const TAG: &str = "e2e";
pub const PASSWORD: &str = "a long and unusual passphrase 7";
/// Each deployable and the Dockerfile target that builds it.
const IMAGES: [&str; 5] = ["auth", "mailer", "web", "gateway", "slipway"];

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

/// Which compose files the stack runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `docker compose up`: the base and the dev override, plus the test's SMTP sink.
    Dev,
    /// The base and docker-compose.prod.yml.
    Prod,
    /// Dev with docker-compose.backup.yml: Postgres archiving with pgBackRest, the backup service.
    Backup,
    /// Backup with docker-compose.backup-s3.yml, and the test's `s3.yml` (its server's address
    /// and certificate).
    BackupS3,
    /// Dev with docker-compose.nats.yml: the bus on NATS JetStream.
    Nats,
}

#[derive(Debug)]
pub struct Stack {
    pub dir: PathBuf,
    mode: Mode,
    pub docker_gid: String,
    pub sink: SmtpSink,
    pub http: reqwest::Client,
}

impl Stack {
    /// Builds the images and writes the project folder; nothing runs yet.
    pub async fn prepare(mode: Mode) -> Self {
        images().await;
        let sink = SmtpSink::start_on(host_gateway().await).await;
        let dir = std::env::temp_dir().join(format!("slipway-e2e-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("project folder");
        let files = [
            "docker-compose.yml",
            "docker-compose.override.yml",
            "docker-compose.prod.yml",
            "docker-compose.backup.yml",
            "docker-compose.backup-s3.yml",
            "docker-compose.nats.yml",
            ".env",
        ];
        for file in files {
            std::fs::copy(workspace().join(file), dir.join(file)).expect(file);
        }
        let out = std::process::Command::new(binary("slipway"))
            .args(["env", "secrets", "--files"])
            .arg(dir.join("secrets"))
            .output()
            .expect("slipway env secrets");
        assert!(out.status.success(), "slipway env secrets: {}", String::from_utf8_lossy(&out.stderr));
        // The test's own additions: in dev, mail goes to the sink through the host's bridge
        // address (prod refuses unencrypted SMTP, and the sink speaks no TLS).
        let overlay = match mode {
            Mode::Prod => "services: {}\n".to_string(),
            Mode::Dev | Mode::Backup | Mode::BackupS3 | Mode::Nats => format!(
                "services:\n  mailer:\n    environment:\n      SLIPWAY_MAILER_TRANSPORT: smtp\n      \
             SLIPWAY_MAILER_SMTP_HOST: host.docker.internal\n      SLIPWAY_MAILER_SMTP_PORT: \"{}\"\n      \
             SLIPWAY_MAILER_SMTP_TLS: none\n    extra_hosts: [\"host.docker.internal:host-gateway\"]\n  \
             postgres:\n    ports: !reset []\n",
                sink.port()
            ),
        };
        // The backup tests sign up users continuously, past auth's per-address hourly limit.
        let overlay = match mode {
            Mode::Backup | Mode::BackupS3 => {
                overlay + "  auth:\n    environment:\n      SLIPWAY_AUTH_LIMIT_SIGNUP_IP: \"off\"\n"
            }
            _ => overlay,
        };
        std::fs::write(dir.join("e2e.yml"), overlay).expect("overlay");
        let meta = std::fs::metadata("/var/run/docker.sock").expect("the engine's socket");
        let docker_gid = std::os::unix::fs::MetadataExt::gid(&meta).to_string();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
        let stack = Self { dir, mode, docker_gid, sink, http };
        stack.compose(&["down", "-v", "--remove-orphans"]).await;
        stack
    }

    /// `docker compose …` in the project folder; its stdout, or a panic with its output.
    pub async fn compose(&self, args: &[&str]) -> String {
        let out = self.compose_command(args).output().await.expect("docker compose");
        assert!(
            out.status.success(),
            "docker compose {}: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr),
            self.logs().await
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn compose_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker");
        let files: &[&str] = match self.mode {
            Mode::Dev => &["-f", "docker-compose.override.yml"],
            Mode::Prod => &["-f", "docker-compose.prod.yml"],
            Mode::Backup => &["-f", "docker-compose.override.yml", "-f", "docker-compose.backup.yml"],
            Mode::Nats => &["-f", "docker-compose.override.yml", "-f", "docker-compose.nats.yml"],
            Mode::BackupS3 => &[
                "-f",
                "docker-compose.override.yml",
                "-f",
                "docker-compose.backup.yml",
                "-f",
                "docker-compose.backup-s3.yml",
                "-f",
                "s3.yml",
            ],
        };
        cmd.current_dir(&self.dir)
            .args(["compose", "-p", PROJECT, "-f", "docker-compose.yml"])
            .args(files)
            .args(["-f", "e2e.yml"])
            .args(args)
            .env("SLIPWAY_TAG", TAG)
            .env("SLIPWAY_PUBLIC_URL", GATEWAY)
            .env("DOCKER_GID", &self.docker_gid);
        cmd
    }

    /// The last lines each container logged, for failure messages.
    pub async fn logs(&self) -> String {
        let out = self.compose_command(&["logs", "--no-color", "--tail", "30"]).output().await;
        out.map(|o| String::from_utf8_lossy(&o.stdout).to_string()).unwrap_or_default()
    }

    /// `up -d --wait` with these extra arguments; how long it took to reach all-healthy.
    pub async fn up(&self, extra: &[&str]) -> Duration {
        let started = Instant::now();
        let mut args = vec!["up", "-d", "--wait", "--no-build"];
        args.extend_from_slice(extra);
        self.compose(&args).await;
        started.elapsed()
    }

    /// The ids of a service's running containers.
    pub async fn containers(&self, service: &str) -> Vec<String> {
        self.compose(&["ps", "-q", "--status", "running", service])
            .await
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// One value from Postgres, through psql in its container.
    pub async fn sql(&self, query: &str) -> String {
        self.compose(&["exec", "-T", "postgres", "psql", "-U", "slipway", "-d", "slipway", "-tAc", query])
            .await
    }

    /// The gateway's view of a route: each instance's address, availability and request count.
    pub async fn instances(&self, route: &str) -> Vec<Value> {
        let Ok(res) = self.http.get(format!("{ADMIN}/routes")).send().await else { return Vec::new() };
        let Ok(routes) = res.json::<Value>().await else { return Vec::new() };
        routes["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["name"] == route)
            .flat_map(|r| r["instances"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    pub async fn available(&self, route: &str) -> usize {
        self.instances(route).await.iter().filter(|i| i["available"] == true).count()
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http.post(format!("{GATEWAY}{path}")).json(&body).send().await.expect("POST through the gateway")
    }

    pub async fn signup(&self, email: &str) {
        let res = self.post("/api/auth/signup", json!({ "email": email, "password": PASSWORD })).await;
        assert!(res.status().is_success(), "signup {email}: {}", res.status());
    }

    /// The status of a login, and the access token when it succeeded.
    pub async fn login(&self, email: &str) -> (u16, Option<String>) {
        let res = self.post("/api/auth/login", json!({ "email": email, "password": PASSWORD })).await;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or_default();
        (status, body["access_token"].as_str().map(str::to_string))
    }

    /// The emails the sink received for `email`.
    pub fn mails_to(&self, email: &str) -> Vec<testkit::smtp::Received> {
        self.sink.received().into_iter().filter(|m| m.to.iter().any(|t| t.contains(email))).collect()
    }

    /// The activation token in the one email `email` received.
    pub async fn activation_token(&self, email: &str) -> String {
        testkit::eventually(Duration::from_secs(60), "the activation email", async || {
            !self.mails_to(email).is_empty()
        })
        .await;
        token_in(&self.mails_to(email)[0].data).expect("an activation link in the email")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .current_dir(&self.dir)
            .args(["compose", "-p", PROJECT, "down", "-v", "--remove-orphans", "--timeout", "5"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The token of the `/activate?token=…` link, read through quoted-printable soft breaks.
pub fn token_in(data: &str) -> Option<String> {
    let text = data.replace("=\r\n", "").replace("=3D", "=");
    let start = text.find("/activate?token=")? + "/activate?token=".len();
    let token: String =
        text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    (!token.is_empty()).then_some(token)
}

/// The host's address on Docker's default bridge, which `host-gateway` names in a container.
pub async fn host_gateway() -> std::net::IpAddr {
    let out = Command::new("ip").args(["-4", "-o", "addr", "show", "docker0"]).output().await.expect("ip");
    let text = String::from_utf8_lossy(&out.stdout);
    let cidr = text.split_whitespace().skip_while(|w| *w != "inet").nth(1).expect("docker0 has an address");
    cidr.split('/').next().and_then(|ip| ip.parse().ok()).expect("an IPv4 address")
}

/// The engine, the base images' stand-ins, and this run's images (`<project::IMAGES>/<name>:e2e`).
pub async fn images() {
    testkit::docker::engine().await;
    stand_ins().await;
    build_images().await;
}

/// The local stand-ins for the public base images (no registry is reachable here).
async fn stand_ins() {
    stand_ins_of(&["debian", "postgres"]).await;
}

/// These stand-ins (`debian`, `postgres`, `python`, `rust`).
pub async fn stand_ins_of(images: &[&str]) {
    let script = workspace().join("docker/stand-ins/build");
    let out = Command::new(&script).args(images).output().await.expect("docker/stand-ins/build");
    assert!(out.status.success(), "docker/stand-ins/build: {}", String::from_utf8_lossy(&out.stderr));
}

/// A binary of this build, beside the test binary (`build_images` brings them up to date).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let dir = exe.ancestors().nth(2).expect("target/<profile>").to_path_buf();
    dir.join(name)
}

/// The five images, from this run's binaries through the Dockerfile's `prebuilt` source.
/// Tests run in processes of their own, all sharing target/docker-bin: a file lock makes
/// them build one at a time (a later one finds the images up to date at once).
async fn build_images() {
    let lock_path = workspace().join("target/docker-bin.lock");
    let lock = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::create(&lock_path).expect("target/docker-bin.lock");
        file.lock().expect("lock target/docker-bin.lock");
        file
    })
    .await
    .expect("lock task");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let packages = ["-p", "auth", "-p", "mailer", "-p", "web", "-p", "gateway", "-p", "slipway-cli"];
    let out = Command::new(cargo)
        .current_dir(workspace())
        .args(["build", "--quiet", "--bins"])
        .args(packages)
        .output()
        .await
        .expect("cargo build");
    assert!(out.status.success(), "cargo build: {}", String::from_utf8_lossy(&out.stderr));
    let bins = workspace().join("target/docker-bin");
    std::fs::create_dir_all(&bins).expect("target/docker-bin");
    for name in IMAGES {
        let from = binary(name);
        if !packages.contains(&name) && name != "slipway" {
            continue; // an image without a binary (a Python service's)
        }
        std::fs::copy(&from, bins.join(name)).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
    for target in IMAGES {
        let tag = format!("{}/{target}:{TAG}", project::IMAGES);
        let out = Command::new("docker")
            .current_dir(workspace())
            .env("DOCKER_BUILDKIT", "1")
            .args(["build", "-q", "--build-arg", "BINARIES=prebuilt", "--target", target, "-t", &tag, "."])
            .output()
            .await
            .expect("docker build");
        assert!(out.status.success(), "docker build {target}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let _ = std::fs::remove_dir_all(&bins);
    // The images these replaced, and only ours.
    let _ = Command::new("docker")
        .args(["image", "prune", "-f", "--filter", "label=org.slipway.image"])
        .output()
        .await;
    drop(lock);
}
