//! A real Docker engine for tests: started if it is installed but not running, restartable,
//! with a tiny local image (Debian's static busybox, imported) since no registry is reachable.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// The image tests run: busybox's `httpd` and `sh`, nothing else.
pub const BUSYBOX: &str = "slipway-test/busybox:1";
const PIDFILE: &str = "/var/run/docker.pid";

/// Runs `docker args…`; its trimmed stdout, or a panic with its stderr.
pub async fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .await
        .expect("run the docker CLI (apt-get install docker.io)");
    assert!(out.status.success(), "docker {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn answers() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

async fn await_engine(up: bool) {
    crate::eventually(
        Duration::from_secs(60),
        if up { "dockerd to answer" } else { "dockerd to stop" },
        async || answers().await == up,
    )
    .await;
}

/// Starts `dockerd` detached from the test process (it outlives the test, as a system daemon would).
fn start_daemon() {
    let log = std::env::temp_dir().join("slipway-dockerd.log");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("setsid dockerd >'{}' 2>&1 </dev/null &", log.display()))
        .status()
        .expect("sh");
    assert!(status.success(), "start dockerd (apt-get install docker.io; tests run as root)");
}

/// Makes sure an engine answers (starting `dockerd` if needed) and the test image exists.
pub async fn engine() {
    if !answers().await {
        start_daemon();
        await_engine(true).await;
    }
    let present = Command::new("docker")
        .args(["image", "inspect", BUSYBOX])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if !present {
        import_busybox().await;
    }
}

/// Stops the engine (its containers stop with it) and starts it again.
pub async fn restart() {
    let pid = std::fs::read_to_string(PIDFILE).expect("dockerd pid file");
    let status = Command::new("kill").args(["-TERM", pid.trim()]).status().await.expect("kill");
    assert!(status.success(), "signal dockerd");
    crate::eventually(Duration::from_secs(60), "dockerd to exit", async || {
        !Path::new(&format!("/proc/{}", pid.trim())).exists()
    })
    .await;
    await_engine(false).await;
    start_daemon();
    await_engine(true).await;
}

async fn import_busybox() {
    let root = std::env::temp_dir().join(format!("busybox-root-{}", std::process::id()));
    std::fs::create_dir_all(root.join("bin")).expect("rootfs");
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("/bin/busybox (apt-get install busybox-static)");
    for applet in ["sh", "httpd", "hostname", "mkdir"] {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
    }
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["-cf", "-", "."])
        .stdout(Stdio::piped())
        .spawn()
        .expect("tar");
    let stdout: Stdio = tar.stdout.expect("tar output").try_into().expect("pipe");
    let status =
        Command::new("docker").args(["import", "-", BUSYBOX]).stdin(stdout).status().await.expect("import");
    assert!(status.success(), "docker import {BUSYBOX}");
    let _ = std::fs::remove_dir_all(root);
}

/// A container removed (with force) when dropped.
#[derive(Debug)]
pub struct Container {
    /// The container's id.
    pub id: String,
}

impl Container {
    /// `docker run -d args…`.
    pub async fn run(args: &[&str]) -> Self {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        Self { id: docker(&all).await }
    }

    /// The container's hostname, which busybox's httpd in [`Container::web`] serves.
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// A busybox httpd on `port` serving its own hostname at `/`, with `labels`.
    pub async fn web(port: u16, labels: &[&str]) -> Self {
        Self::start_web(labels, format!("exec httpd -f -p {port} -h /www")).await
    }

    /// Like [`Container::web`], but SIGTERM is ignored (PID 1 is a shell that traps it), so
    /// `docker stop` leaves it serving until its timeout.
    pub async fn stubborn_web(port: u16, labels: &[&str]) -> Self {
        Self::start_web(labels, format!("trap '' TERM; httpd -f -p {port} -h /www & wait")).await
    }

    /// Like [`Container::web`], with extra `docker run` options (`-e NAME=value`, …).
    pub async fn web_with(port: u16, labels: &[&str], options: &[&str]) -> Self {
        Self::start(labels, options, format!("exec httpd -f -p {port} -h /www")).await
    }

    async fn start_web(labels: &[&str], serve: String) -> Self {
        Self::start(labels, &[], serve).await
    }

    async fn start(labels: &[&str], options: &[&str], serve: String) -> Self {
        let mut args: Vec<String> = options.iter().map(|o| (*o).to_string()).collect();
        for l in labels {
            args.push("--label".into());
            args.push((*l).into());
        }
        args.push(BUSYBOX.into());
        args.extend([
            "sh".into(),
            "-c".into(),
            format!("mkdir /www && hostname > /www/index.html && {serve}"),
        ]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        Self::run(&refs).await
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
