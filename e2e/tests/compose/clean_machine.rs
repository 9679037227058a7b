//! A fresh machine: a clean Debian (debootstrap's minbase, as the stand-ins are made) with only
//! Rust added, in a container. Until `cargo xtask setup` runs, each README command names what
//! is missing and the command that installs it; after it, both commands work.
//!
//! The container shares this machine's Docker engine (its socket) and its crate cache
//! (offline), gets a build-dir seeded with this run's compiled dependencies (so they are not
//! compiled again), and sees the project at the
//! same path as the engine does, so the stack's bind mounts resolve.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::helpers::{GATEWAY, binary, stand_ins_of, workspace};

/// The stack's compose project and image tag, so neither meets another test's.
const PROJECT: &str = "slipway-clean-e2e";
/// What a clean Debian lacks: each must be named, with its install command, until setup runs.
const MISSING: [&str; 6] = [
    "git",
    "Postgres server binaries",
    "Docker Engine",
    "Chromium and chromedriver",
    "Node.js and npm",
    "schemathesis",
];

/// The machine: a container, removed (with the stack it started) when dropped.
struct Machine {
    name: String,
    dir: PathBuf,
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .current_dir(&self.dir)
            .args(["compose", "-p", PROJECT, "down", "-v", "--remove-orphans", "--timeout", "5"])
            .output();
        let _ = std::process::Command::new("docker").args(["rm", "-f", &self.name]).output();
        for name in ["auth", "mailer", "web", "gateway", "slipway"] {
            let _ = std::process::Command::new("docker")
                .args(["image", "rm", &format!("{}/{name}:{PROJECT}", project::IMAGES)])
                .output();
        }
        let _ = std::process::Command::new("docker")
            .args(["image", "prune", "-f", "--filter", "label=org.slipway.image"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Machine {
    /// `sh -c script` on the machine: its exit code and output.
    async fn run(&self, script: &str) -> (i32, String) {
        let out = Command::new("docker")
            .args(["exec", "-e", &format!("COMPOSE_PROJECT_NAME={PROJECT}"), &self.name, "sh", "-c", script])
            .output()
            .await
            .expect("docker exec");
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), text)
    }

    /// Like `run`, failing the test unless it succeeds.
    async fn ok(&self, script: &str) -> String {
        let (code, text) = self.run(script).await;
        assert_eq!(code, 0, "`{script}` on the clean machine:\n{text}");
        text
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_debian_with_only_rust_names_each_missing_prerequisite_until_setup_installs_them_all() {
    testkit::docker::engine().await;
    stand_ins_of(&["debian", "postgres", "rust"]).await;
    let dir = testkit::copy_of_checkout(&workspace(), "slipway-clean");
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    // A build-dir of the machine's own, with this run's compiled dependencies (not this run's
    // build-dir itself: the copy's crates would replace this run's, testkit::build_dir).
    let this_build = binary("slipway").ancestors().nth(2).expect("this build's target folder").to_path_buf();
    let build_dir = dir.join("target/clean-build");
    testkit::seed_build_dir(&workspace(), &this_build, &build_dir);
    let rust_version = std::fs::read_to_string(workspace().join("Dockerfile"))
        .expect("Dockerfile")
        .lines()
        .find_map(|l| l.strip_prefix("ARG RUST_VERSION=").map(str::to_string))
        .expect("ARG RUST_VERSION in the Dockerfile");
    let machine =
        Machine { name: format!("slipway-clean-{}", uuid::Uuid::new_v4().simple()), dir: dir.clone() };
    let mount = |p: &Path| format!("{0}:{0}", path(p));
    let out = Command::new("docker")
        .args(["run", "-d", "--name", &machine.name, "-w", path(&dir)])
        .args(["-v", "/var/run/docker.sock:/var/run/docker.sock"])
        .args(["-v", &mount(&dir), "-v", &mount(&cargo_home), "-v", &mount(&build_dir)])
        .args(["-e", &format!("CARGO_HOME={}", path(&cargo_home)), "-e", "CARGO_NET_OFFLINE=true"])
        .args([
            "-e",
            &format!("CARGO_BUILD_BUILD_DIR={}", path(&build_dir)),
            "-e",
            "CARGO_TARGET_DIR=/root/target",
        ])
        .arg(format!("rust:{rust_version}-slim-bookworm"))
        .args(["sleep", "infinity"])
        .output()
        .await
        .expect("docker run");
    assert!(out.status.success(), "docker run: {}", String::from_utf8_lossy(&out.stderr));

    // Before setup: each command says what is missing and how to install it, and does nothing.
    let (code, text) = machine.run("cargo xtask setup --check").await;
    assert_eq!(code, 1, "{text}");
    for name in MISSING {
        assert!(text.contains(&format!("missing: {name}, for ")), "setup --check names {name}:\n{text}");
    }
    assert!(text.contains("apt-get install docker.io") && text.contains("cargo xtask setup"), "{text}");
    let (code, text) = machine.run("cargo xtask test").await;
    assert_eq!(code, 1, "{text}");
    for name in MISSING {
        assert!(text.contains(&format!("missing: {name}, for ")), "xtask test names {name}:\n{text}");
    }
    assert!(!text.contains("Compiling"), "it stops before compiling the tests:\n{text}");
    let (code, text) = machine.run("cargo slipway up").await;
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("Docker is not installed") && text.contains("apt-get install docker.io"), "{text}");

    // One command installs everything (the engine is this machine's, through its socket).
    let started = Instant::now();
    let text = machine.ok("cargo xtask setup").await;
    let setup = started.elapsed();
    assert!(text.contains("everything `cargo slipway up` and `cargo xtask test` need is here"), "{text}");
    machine.ok("cargo xtask setup --check").await;
    machine.ok("cargo slipway doctor").await;

    // The test command: a throwaway Postgres from the installed server binaries, and Python's
    // bus client from the installed packages.
    let started = Instant::now();
    let text = machine.ok("cargo xtask test -p kit -p bus").await;
    assert!(text.contains("throwaway Postgres") && !text.contains("FAILED"), "{text}");
    let tested = started.elapsed();

    // The stack command: `slipway up`, its images made from binaries compiled on the machine.
    let started = Instant::now();
    machine
        .ok("cargo build --quiet --locked --bins -p auth -p mailer -p web -p gateway -p slipway-cli \
             && mkdir -p target/docker-bin \
             && cp /root/target/debug/auth /root/target/debug/mailer /root/target/debug/web \
                /root/target/debug/gateway /root/target/debug/slipway target/docker-bin/")
        .await;
    machine.ok(&format!("SLIPWAY_BINARIES=prebuilt SLIPWAY_TAG={PROJECT} cargo slipway up")).await;
    let up = started.elapsed();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let page = http.get(format!("{GATEWAY}/signup")).send().await.expect("GET /signup");
    assert_eq!(page.status(), 200, "the signup page of the stack the clean machine started");
    eprintln!(
        "e2e: a clean Debian with only Rust: setup in {setup:.1?}, `cargo xtask test -p kit -p bus` in \
         {tested:.1?}, compile and `slipway up` in {up:.1?}"
    );
}
