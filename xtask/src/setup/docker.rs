//! The Docker pieces a package list cannot cover: a daemon that answers, an engine new
//! enough for health checks' `start_interval` (Engine 25; Debian 12 ships 20.10), and compose
//! v2, buildx and a CLI with `docker stack config` (Debian 12 ships none of the three).

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

fn quietly(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether the engine answers.
pub(crate) fn daemon_answers() -> bool {
    quietly("docker", &["version"])
}

/// Whether compose v2, buildx and `docker stack config` are all there.
pub(crate) fn plugins_present() -> bool {
    quietly("docker", &["compose", "version"])
        && quietly("docker", &["buildx", "version"])
        && quietly("docker", &["stack", "config", "--help"])
}

/// The oldest engine with a health check `start_interval`: before it, Docker runs a
/// container's first check one whole interval after its start.
const ENGINE_WANTED: u32 = 25;

/// An engine older than 25, and whether setup replaces it.
pub(crate) struct OldEngine {
    pub(crate) major: u32,
    /// This machine's own engine from Debian's `docker.io`, which setup replaces with Debian
    /// 13's; an engine from elsewhere, or another machine's (through a shared socket or
    /// DOCKER_HOST), is its owner's to upgrade.
    pub(crate) replaceable: bool,
}

/// The engine, if it is older than 25 (no health check `start_interval`: the stack runs,
/// each service just reports healthy one interval after its start). Read from the engine that
/// answers, else from this machine's `dockerd`.
pub(crate) fn old_engine() -> Option<OldEngine> {
    let answering = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).to_string());
    // "26.1.5+dfsg1", or dockerd's "Docker version 20.10.24+dfsg1, build 297e128"
    let version = match &answering {
        Some(v) => v.clone(),
        None => {
            let out = Command::new("dockerd").arg("--version").stderr(Stdio::null()).output().ok()?;
            String::from_utf8_lossy(&out.stdout).split_whitespace().nth(2)?.to_string()
        }
    };
    let major: u32 = version.trim().split('.').next()?.parse().ok()?;
    if major >= ENGINE_WANTED {
        return None;
    }
    let local = answering.is_none()
        || std::path::Path::new("/var/run/docker.pid").exists()
        || std::path::Path::new("/run/systemd/system").exists();
    Some(OldEngine { major, replaceable: local && quietly("dpkg-query", &["-W", "docker.io"]) })
}

/// Replaces Debian 12's engine with Debian 13's `docker.io` and `docker-cli` (26.1; they need
/// nothing newer than Debian 12's containerd, runc and libc), stopping a running daemon first.
pub(crate) fn upgrade_engine() -> anyhow::Result<()> {
    println!("setup: Docker Engine 26 from Debian trixie's docker.io (for health checks' start_interval)");
    stop_daemon()?;
    let (work, debs) = trixie_debs(&["docker.io", "docker-cli"])?;
    let debs: Vec<String> = debs.iter().map(|p| p.display().to_string()).collect();
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(debs.iter().map(String::as_str));
    super::root_command("apt-get", &args)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Stops a local daemon: through systemd where it runs, else by its pid file.
fn stop_daemon() -> anyhow::Result<()> {
    if !daemon_answers() {
        return Ok(());
    }
    if std::path::Path::new("/run/systemd/system").exists() {
        return super::root_command("systemctl", &["stop", "docker.socket", "docker"]);
    }
    let pid =
        std::fs::read_to_string("/var/run/docker.pid").context("dockerd runs without /var/run/docker.pid")?;
    super::root_command("kill", &[pid.trim()])?;
    for _ in 0..60 {
        if !std::path::Path::new("/var/run/docker.pid").exists() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    bail!("dockerd (pid {}) did not stop within 60 s", pid.trim())
}

/// Starts the engine: through systemd where it runs, else dockerd in its own session.
pub(crate) fn start_daemon() -> anyhow::Result<()> {
    let systemd = std::path::Path::new("/run/systemd/system").exists();
    if systemd && super::root_command("systemctl", &["start", "docker"]).is_ok() {
        // started as the service it is installed as
    } else {
        let log =
            std::fs::File::create("/tmp/slipway-dockerd.log").context("cannot write the dockerd log")?;
        let mut dockerd = Command::new("setsid");
        dockerd.arg("dockerd").stdout(log.try_clone()?).stderr(log);
        dockerd.spawn().context("cannot start dockerd")?;
    }
    for _ in 0..60 {
        if daemon_answers() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    bail!(
        "the Docker daemon did not answer within 60 s (its log: /tmp/slipway-dockerd.log or `journalctl -u docker`)"
    )
}

/// Installs compose v2 and buildx: Ubuntu's packages where apt has them, else the static
/// binaries from Debian 13's packages (and its docker CLI when this one has no `stack config`).
pub(crate) fn install_plugins() -> anyhow::Result<()> {
    let ubuntu = Command::new("apt-cache")
        .args(["show", "docker-compose-v2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ubuntu {
        super::apt_install(&["docker-compose-v2", "docker-buildx"])?;
        if plugins_present() {
            return Ok(());
        }
    }
    from_trixie()
}

fn from_trixie() -> anyhow::Result<()> {
    println!("setup: compose v2 and buildx from Debian trixie's packages");
    let (work, debs) = trixie_debs(&["docker-compose", "docker-buildx", "docker-cli"])?;
    let extracted = work.join("x");
    for deb in debs {
        super::run_command("dpkg", &["-x", &deb.display().to_string(), &extracted.display().to_string()])?;
    }
    let plugins = std::path::Path::new("/usr/local/lib/docker/cli-plugins");
    std::fs::create_dir_all(plugins)?;
    for plugin in ["docker-compose", "docker-buildx"] {
        std::fs::copy(extracted.join("usr/libexec/docker/cli-plugins").join(plugin), plugins.join(plugin))
            .with_context(|| format!("cannot install {plugin}"))?;
    }
    if !quietly("docker", &["stack", "config", "--help"]) {
        std::fs::copy(extracted.join("usr/bin/docker"), "/usr/local/bin/docker")
            .context("cannot install the docker CLI")?;
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Downloads Debian 13's packages into a new folder (without adding trixie to apt's sources);
/// the folder and the packages' files in it.
fn trixie_debs(packages: &[&str]) -> anyhow::Result<(std::path::PathBuf, Vec<std::path::PathBuf>)> {
    let work = std::env::temp_dir().join(format!("slipway-setup-{}-{}", std::process::id(), packages[0]));
    std::fs::create_dir_all(work.join("lists/partial"))?;
    std::fs::create_dir_all(work.join("cache/archives/partial"))?;
    std::fs::write(work.join("sources.list"), "deb http://deb.debian.org/debian trixie main\n")?;
    let options = [
        format!("Dir::Etc::sourcelist={}", work.join("sources.list").display()),
        "Dir::Etc::sourceparts=/dev/null".to_string(),
        format!("Dir::State::Lists={}", work.join("lists").display()),
        format!("Dir::Cache={}", work.join("cache").display()),
    ];
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        for o in &options {
            cmd.args(["-o", o]);
        }
        cmd.args(args).current_dir(&work).status()
    };
    let mut download = vec!["download"];
    download.extend(packages);
    if !apt(&["update", "-qq"])?.success() || !apt(&download)?.success() {
        bail!("cannot fetch {} from Debian trixie", packages.join(", "));
    }
    let debs = std::fs::read_dir(&work)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    Ok((work, debs))
}
