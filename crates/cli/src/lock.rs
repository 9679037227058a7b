//! The deploy lock of a destination: one deploy at a time, and no lock outliving its holder.
//!
//! The lock is a container with a fixed name on the destination's engine (the engine refuses
//! a second container of that name, so taking it is atomic), labelled with who holds it. Its
//! process (`slipway lock hold`) lives until its standard input closes, and that input is the
//! holder's connection: a finished, killed or disconnected holder (SIGKILL, a lost SSH link)
//! closes it, the container exits and is removed (`--rm`). Nothing has to expire; a lock
//! cannot stay held after its deploy died. `slipway lock release` breaks one by force.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;
use tokio::io::AsyncBufReadExt as _;

use crate::deploy::{self, Destination};
use crate::{Failure, prompt};

/// The lock container's name on every destination's engine.
pub const NAME: &str = "slipway-deploy-lock";
const LABEL: &str = "slipway.lock";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Who holds a destination's deploy lock, since when, with what command.
    Status { destination: String },
    /// Break a destination's deploy lock (its holder is gone, or must be stopped).
    Release {
        destination: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Run a command while holding a destination's deploy lock: no deploy starts meanwhile.
    Run {
        destination: String,
        /// The image the lock's container runs (it must be on the destination); by default
        /// the CLI's own, `<project's image namespace>/slipway:latest`.
        #[arg(long)]
        image: Option<String>,
        /// Wait for the lock instead of failing when it is held.
        #[arg(long)]
        wait: bool,
        /// The command, after `--`.
        #[arg(trailing_var_arg = true, required = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Inside the lock's container: print `held`, then wait until standard input closes.
    #[command(hide = true)]
    Hold,
}

pub async fn run(cmd: Command) -> Result<(), Failure> {
    match cmd {
        Command::Hold => hold(),
        Command::Status { destination } => {
            let dest = deploy::find(Path::new("."), &destination)?;
            match holder(&dest).await? {
                Some(h) => println!("{}: held by {}", dest.name, h.describe()),
                None => println!("{}: not held", dest.name),
            }
            Ok(())
        }
        Command::Release { destination, yes } => {
            let dest = deploy::find(Path::new("."), &destination)?;
            let Some(h) = holder(&dest).await? else {
                println!("{}: not held", dest.name);
                return Ok(());
            };
            prompt::confirm(
                &format!("Break the deploy lock of {}, held by {}?", dest.name, h.describe()),
                yes,
            )?;
            let out = dest.engine.output(&["rm", "--force", NAME]).await?;
            if !out.status.success() {
                return Err(deploy::engine_failure(&dest, "releasing the lock", &out.stderr));
            }
            println!("{}: released (was held by {})", dest.name, h.describe());
            Ok(())
        }
        Command::Run { destination, image, wait, command } => {
            let dest = deploy::find(Path::new("."), &destination)?;
            let image = image.unwrap_or_else(|| format!("{}/slipway:latest", project::IMAGES));
            let held = acquire(&dest, &image, wait).await?;
            let status = tokio::process::Command::new(&command[0]).args(&command[1..]).status().await;
            held.release().await;
            match status {
                Ok(s) if s.success() => Ok(()),
                Ok(s) => Err(Failure::Failed(anyhow::anyhow!("{} exited with {s}", command[0]))),
                Err(e) => Err(Failure::Failed(anyhow::anyhow!("cannot run {}: {e}", command[0]))),
            }
        }
    }
}

/// The lock's process: announces itself, then lives exactly as long as its input is open.
fn hold() -> Result<(), Failure> {
    let mut out = std::io::stdout();
    writeln!(out, "held").and_then(|()| out.flush()).context("writing to the holder")?;
    let mut sink = [0u8; 256];
    let mut stdin = std::io::stdin();
    while stdin.read(&mut sink).context("reading from the holder")? > 0 {}
    Ok(())
}

/// A held lock; dropping it (or the process dying) releases it.
#[derive(Debug)]
pub struct Held {
    child: tokio::process::Child,
}

impl Held {
    /// Closes the holder's side and waits until the engine has removed the lock.
    pub async fn release(mut self) {
        drop(self.child.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}

/// Takes the destination's lock, labelled with who is taking it; when it is held, fails at
/// once naming the holder, or with `wait` tries again every two seconds.
pub async fn acquire(dest: &Destination, image: &str, wait: bool) -> Result<Held, Failure> {
    let me = Holder::me();
    let mut announced = false;
    loop {
        let mut cmd = dest.engine.docker();
        cmd.args(["run", "--rm", "--interactive", "--name", NAME, "--network", "none", "--read-only"])
            .args(["--cap-drop", "ALL", "--security-opt", "no-new-privileges:true", "--log-driver", "none"])
            .args(me.labels().iter().flat_map(|l| ["--label".to_string(), l.clone()]))
            .args([image, "lock", "hold"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            Failure::Failed(anyhow::anyhow!(
                "cannot run `docker` ({e}): install Docker's command-line client"
            ))
        })?;
        let stdout = child.stdout.take().context("the lock's output")?;
        let first = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::io::BufReader::new(stdout).lines().next_line(),
        )
        .await;
        if let Ok(Ok(Some(line))) = &first
            && line == "held"
        {
            return Ok(Held { child });
        }
        let _ = child.start_kill();
        let out = child.wait_with_output().await.context("waiting for docker")?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !stderr.contains("is already in use") {
            return Err(if stderr.contains("No such image") || stderr.contains("Unable to find image") {
                Failure::Failed(anyhow::anyhow!(
                    "the lock's image {image} is not on {} ({}): ship the images first, or name one with --image",
                    dest.name,
                    dest.engine.describe()
                ))
            } else {
                deploy::engine_failure(dest, "taking the deploy lock", &out.stderr)
            });
        }
        let held_by =
            holder(dest).await?.map_or_else(|| "someone who just let go".to_string(), |h| h.describe());
        if !wait {
            return Err(Failure::Refused(format!(
                "the deploy lock of {} is held by {held_by}: wait for it (--wait), or if that run is dead, \
                 `slipway lock release {}`",
                dest.name, dest.name
            )));
        }
        if !announced {
            eprintln!("slipway: waiting for the deploy lock of {}, held by {held_by}", dest.name);
            announced = true;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Who holds the lock, from its container's labels; `None` when nobody does.
pub async fn holder(dest: &Destination) -> Result<Option<Holder>, Failure> {
    let out = dest.engine.output(&["inspect", "--format", "{{json .Config.Labels}}", NAME]).await?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("No such object") || stderr.contains("No such container") {
            return Ok(None);
        }
        return Err(deploy::engine_failure(dest, "reading the deploy lock", &out.stderr));
    }
    let labels: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let get = |key: &str| labels.get(&format!("{LABEL}.{key}")).cloned().unwrap_or_else(|| "?".into());
    Ok(Some(Holder {
        user: get("user"),
        machine: get("machine"),
        command: get("command"),
        since: get("since"),
    }))
}

/// Who took a lock: user, machine, the command line, and when.
#[derive(Debug, Clone)]
pub struct Holder {
    user: String,
    machine: String,
    command: String,
    since: String,
}

impl Holder {
    pub fn me() -> Self {
        let user = std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map_or_else(|| nix::unistd::getuid().to_string(), |u| u.name)
        });
        let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map_or_else(|| "unknown".into(), |h| h.trim().to_string());
        let mut words = std::env::args();
        let program = words.next().map(|p| p.rsplit('/').next().unwrap_or("slipway").to_string());
        let command = program.into_iter().chain(words).collect::<Vec<_>>().join(" ");
        Self {
            user,
            machine,
            command,
            since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }

    /// `user@machine`.
    pub fn who(&self) -> String {
        format!("{}@{}", self.user, self.machine)
    }

    fn labels(&self) -> Vec<String> {
        [("user", &self.user), ("machine", &self.machine), ("command", &self.command), ("since", &self.since)]
            .iter()
            .map(|(k, v)| format!("{LABEL}.{k}={v}"))
            .collect()
    }

    pub fn describe(&self) -> String {
        let age = chrono::DateTime::parse_from_rfc3339(&self.since)
            .map(|t| {
                let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds().max(0);
                if secs < 120 { format!(" ({secs} s ago)") } else { format!(" ({} min ago)", secs / 60) }
            })
            .unwrap_or_default();
        format!("{} on {} (`{}`) since {}{age}", self.user, self.machine, self.command, self.since)
    }
}
