//! The Docker pieces a package list cannot cover: a daemon that answers, and compose v2,
//! buildx and a CLI with `docker stack config` (Debian 12 ships none of the three).

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
    let work = std::env::temp_dir().join(format!("slipway-setup-{}", std::process::id()));
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
    if !apt(&["update", "-qq"])?.success()
        || !apt(&["download", "docker-compose", "docker-buildx", "docker-cli"])?.success()
    {
        bail!("cannot fetch docker-compose, docker-buildx and docker-cli from Debian trixie");
    }
    let extracted = work.join("x");
    for deb in
        std::fs::read_dir(&work)?.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "deb"))
    {
        super::run_command(
            "dpkg",
            &["-x", &deb.path().display().to_string(), &extracted.display().to_string()],
        )?;
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
