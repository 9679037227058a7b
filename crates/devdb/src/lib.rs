//! A throwaway local Postgres cluster, started from the system's Postgres binaries, for
//! `slipway dev` and the test command when no `DATABASE_URL` is given.
//!
//! The cluster lives in a fresh temporary folder, listens on loopback on a free port, trusts
//! local connections, trades durability for speed (`fsync=off`), and is stopped and deleted
//! when the [`Cluster`] is dropped. Postgres refuses to run as root, so as root the binaries
//! run as the `postgres` user (the Debian package creates it).

#![warn(missing_docs, unreachable_pub)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// A running throwaway cluster.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    run_as: Option<String>,
}

impl Cluster {
    /// Creates and starts a cluster; fails with a message saying what to install if the
    /// Postgres server binaries are missing.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(false)
    }

    /// A cluster that trusts only its `postgres` superuser: every other role must give its
    /// password (SCRAM-SHA-256), as in production, so tests of roles prove the passwords.
    pub fn start_checking_passwords() -> anyhow::Result<Self> {
        Self::start_with(true)
    }

    fn start_with(check_passwords: bool) -> anyhow::Result<Self> {
        let bin = server_binaries()?;
        let run_as = if nix::unistd::geteuid().is_root() { Some("postgres".to_string()) } else { None };
        let dir = std::env::temp_dir().join(format!("slipway-pg-{}-{}", std::process::id(), nanos()));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut cluster = Self { dir, bin, port: 0, run_as };
        if let Some(user) = &cluster.run_as {
            let user = nix::unistd::User::from_name(user)?
                .with_context(|| format!("running as root, Postgres needs the `{user}` user to run as: install postgresql or run as another user"))?;
            nix::unistd::chown(&cluster.dir, Some(user.uid), Some(user.gid))?;
        }
        cluster.init()?;
        if check_passwords {
            let hba = "local all all trust\nhost all postgres 127.0.0.1/32 trust\n\
                       host all all 127.0.0.1/32 scram-sha-256\n";
            std::fs::write(cluster.data().join("pg_hba.conf"), hba).context("cannot write pg_hba.conf")?;
        }
        cluster.port = free_port()?;
        cluster.pg_ctl_start()?;
        cluster.watch_owner();
        Ok(cluster)
    }

    /// A watchdog outside this process: once the process is gone without stopping the server
    /// (killed outright, so no `Drop` ran), it stops the server and deletes its files, so a
    /// crashed `slipway dev` leaves no Postgres behind. After a clean stop it finds nothing.
    fn watch_owner(&self) {
        let as_user = self.run_as.as_ref().map(|u| format!("runuser -u {u} -- ")).unwrap_or_default();
        let script = format!(
            "while kill -0 {owner} 2>/dev/null; do sleep 1; done; \
             if [ -d '{data}' ]; then {as_user}'{pg_ctl}' -D '{data}' -m immediate stop; fi; rm -rf '{dir}'",
            owner = std::process::id(),
            data = self.data().display(),
            pg_ctl = self.bin.join("pg_ctl").display(),
            dir = self.dir.display(),
        );
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        if let Err(error) = cmd.spawn() {
            eprintln!(
                "devdb: no watchdog for the throwaway Postgres ({error}); a crash would leave it running"
            );
        }
    }

    /// A URL for the `postgres` superuser and the given database.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The port the cluster listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        // Its own process group: a Ctrl-C in the terminal reaches us, not Postgres, so we
        // can stop the services first and Postgres last.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.stdin(Stdio::null());
        cmd
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn init(&self) -> anyhow::Result<()> {
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(self.data())
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])
            .output()
            .context("cannot run initdb")?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    fn pg_ctl_start(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=400 -c shared_buffers=128MB -c autovacuum_naptime=5s",
            self.port,
            self.dir.display()
        );
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("postgres.log"))
            .args(["-o", &options, "-w", "-t", "60", "start"])
            .stdout(Stdio::null())
            .output()
            .context("cannot run pg_ctl")?;
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
            bail!("Postgres did not start: {}\n{log}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// Stops the server and deletes its files.
    pub fn stop(&mut self) {
        if self.port != 0 {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "fast", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            self.port = 0;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The Postgres server binaries: `SLIPWAY_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`,
/// else whatever `initdb` is on the PATH; an error says what to install.
pub fn server_binaries() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("SLIPWAY_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if Path::new(&dir).join("initdb").exists() {
                return Ok(dir);
            }
        }
    }
    bail!(
        "no Postgres server binaries found (initdb). Install them (Debian/Ubuntu: `apt-get install postgresql`), \
         point SLIPWAY_PG_BIN at their folder, or set DATABASE_URL to a server you already run"
    )
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}
