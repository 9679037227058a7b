//! `cargo xtask setup`: installs every prerequisite of the README's two commands on Debian or
//! Ubuntu (`.ci/run` calls it too, so the two cannot drift); `--check` only names what is
//! missing. `cargo xtask test` runs the check first.

mod docker;
mod prerequisites;

use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use prerequisites::Source;

/// Installs what is missing (or, with `check`, only reports it); fails if anything still is.
pub fn run(check: bool) -> anyhow::Result<ExitCode> {
    if !check {
        install()?;
    }
    let missing = report();
    if missing == 0 {
        println!("setup: everything `cargo slipway up` and `cargo xtask test` need is here");
        return Ok(ExitCode::SUCCESS);
    }
    if check {
        println!(
            "setup: `cargo xtask setup` installs {} (Debian or Ubuntu, as root or with sudo)",
            if missing == 1 { "it" } else { "them" }
        );
    }
    Ok(ExitCode::FAILURE)
}

/// Prints each missing prerequisite with what needs it and its install command; returns
/// how many there are.
pub fn report() -> usize {
    let mut count = 0;
    for p in prerequisites::missing() {
        count += 1;
        println!("missing: {}, for {}: {}", p.name, p.needed_by, p.install_hint());
    }
    if !prerequisites::on_path("docker") {
        return count;
    }
    if !docker::plugins_present() {
        count += 1;
        println!(
            "missing: Docker Compose v2, buildx or `docker stack config`, for `slipway up` and the compose, \
             deploy and Swarm tests: `cargo xtask setup` installs them"
        );
    }
    match docker::old_engine() {
        Some(docker::OldEngine { major, replaceable: true }) => {
            count += 1;
            println!(
                "missing: Docker Engine 25 or newer (this is Debian's {major}), for health checks' start_interval \
                 (the stack healthy in a fraction of a second, not one 5 s interval): `cargo xtask setup` \
                 installs Debian trixie's docker.io"
            );
        }
        Some(docker::OldEngine { major, replaceable: false }) => println!(
            "note: Docker Engine {major} has no health check start_interval: the stack works, but each \
             service reports healthy only one interval (5 s) after its start; Engine 25 or newer fixes it"
        ),
        None => {}
    }
    count
}

fn install() -> anyhow::Result<()> {
    let missing = prerequisites::missing();
    let mut apt: Vec<&str> = Vec::new();
    for p in &missing {
        if let Source::Apt(packages) = p.source {
            apt.extend(packages);
        }
    }
    if !apt.is_empty() {
        apt_install(&apt)?;
    }
    for p in missing {
        match p.source {
            Source::Pip { pip, apt } => pip_install(pip, apt)?,
            Source::NpmTools => {
                println!("setup: installing the npm tools (npm ci --prefix tools)");
                let tools = crate::workflows::tools().display().to_string();
                run_command("npm", &["ci", "--silent", "--prefix", &tools])?;
            }
            Source::Apt(_) => {}
        }
    }
    if docker::old_engine().is_some_and(|e| e.replaceable) {
        docker::upgrade_engine()?;
    }
    if prerequisites::on_path("docker") && !docker::daemon_answers() {
        println!("setup: starting the Docker daemon");
        docker::start_daemon()?;
    }
    if prerequisites::on_path("docker") && !docker::plugins_present() {
        docker::install_plugins()?;
    }
    Ok(())
}

/// `apt-get install` as root: directly, or through sudo.
fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    println!("setup: installing {}", packages.join(" "));
    root_command("apt-get", &["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(packages);
    root_command("apt-get", &args)
}

/// PyPI packages for this user's Python; where pip may not install into the system's
/// (PEP 668), with `--break-system-packages`, or Debian's packages when there are some.
fn pip_install(pip: &[&str], apt: &[&str]) -> anyhow::Result<()> {
    println!("setup: installing {} (PyPI)", pip.join(" "));
    let mut args = vec!["-m", "pip", "install", "--quiet"];
    args.extend(pip);
    if Command::new("python3").args(&args).status().is_ok_and(|s| s.success()) {
        return Ok(());
    }
    if !apt.is_empty() {
        return apt_install(apt);
    }
    args.push("--break-system-packages");
    run_command("python3", &args)
}

/// Runs a command that needs root: as is when we are root, else through sudo.
fn root_command(program: &str, args: &[&str]) -> anyhow::Result<()> {
    if nix::unistd::geteuid().is_root() {
        let mut cmd = Command::new(program);
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        return check_status(cmd, program, args);
    }
    if !prerequisites::on_path("sudo") {
        bail!("`{program} {}` needs root: run `cargo xtask setup` as root", args.join(" "));
    }
    let mut cmd = Command::new("sudo");
    cmd.arg("env").arg("DEBIAN_FRONTEND=noninteractive").arg(program).args(args);
    check_status(cmd, program, args)
}

fn run_command(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    check_status(cmd, program, args)
}

fn check_status(mut cmd: Command, program: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("cannot run {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
