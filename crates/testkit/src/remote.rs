//! A second Docker host for deploy tests: a real `dockerd` in a network namespace of the
//! test's own, reached over SSH (Debian's openssh-server) with keys made for the test.
//!
//! The namespace shares this machine's files, so both daemons get a mount namespace of their
//! own with a private /run: dockerd sees its own socket at /run/docker.sock (a container that
//! mounts the engine's socket, such as docker-proxy, gets this engine), and sshd sees it there
//! too, so the `docker system dial-stdio` of an `ssh://` connection reaches the second engine.
//! (A bind mount over this machine's /run/docker.sock would be detached whenever this
//! machine's dockerd restarts and makes its socket anew, as some tests make it do.) The
//! client side is an `ssh` wrapper, first on the PATH a test gives the CLI, that uses the
//! test's key and known-hosts file and never asks anything.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

/// A Docker engine on another "machine": its own network namespace and address.
#[derive(Debug)]
pub struct RemoteHost {
    dir: PathBuf,
    namespace: String,
    veth: String,
    /// The host's address, reachable from this machine (published ports answer there).
    pub address: Ipv4Addr,
}

fn sh(script: &str) -> std::process::Output {
    std::process::Command::new("sh").arg("-c").arg(script).output().expect("sh")
}

fn ok(script: &str) {
    let out = sh(script);
    assert!(
        out.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl RemoteHost {
    /// Starts the namespace, its engine and its sshd; returns once `docker` over SSH answers.
    pub async fn start() -> Self {
        let taken = String::from_utf8_lossy(&sh("ip -4 -o addr show").stdout).to_string();
        let n = (0..200)
            .map(|_| 10 + (uuid::Uuid::new_v4().as_u128() % 240) as u8)
            .find(|n| !taken.contains(&format!(" 10.231.{n}.")))
            .expect("a free 10.231.N.0/24");
        let dir = std::env::temp_dir().join(format!("slipway-remote-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("bin")).expect("host folder");
        let host = Self {
            dir,
            namespace: format!("slw-{n}"),
            veth: format!("slwh{n}"),
            address: Ipv4Addr::new(10, 231, n, 2),
        };
        let (ns, veth, d) = (&host.namespace, &host.veth, host.dir.display());
        ok(&format!(
            "ip netns add {ns} && ip link add {veth} type veth peer name slwr{n} && \
             ip link set slwr{n} netns {ns} && ip addr add 10.231.{n}.1/24 dev {veth} && ip link set {veth} up && \
             ip netns exec {ns} sh -c 'ip addr add 10.231.{n}.2/24 dev slwr{n} && ip link set slwr{n} up && \
             ip link set lo up && ip route add default via 10.231.{n}.1'"
        ));
        let cgroups = cgroup_mounts();
        ok(&format!(
            "setsid ip netns exec {ns} sh -c '{cgroups} && mount -t tmpfs tmpfs /run && \
             exec dockerd --data-root {d}/data --exec-root {d}/exec --pidfile {d}/docker.pid \
             -H unix:///run/docker.sock -H unix://{d}/docker.sock' >{d}/dockerd.log 2>&1 </dev/null &"
        ));
        crate::eventually(Duration::from_secs(60), "the second engine to answer", async || {
            host.docker_local(&["version", "--format", "{{.Server.Version}}"]).await.is_some()
        })
        .await;
        host.start_sshd(n);
        crate::eventually(Duration::from_secs(90), "the second engine to answer over SSH", async || {
            let mut cmd = Command::new("docker");
            cmd.env("PATH", host.path()).args(["--host", &host.engine(), "version"]);
            cmd.output().await.is_ok_and(|o| o.status.success())
        })
        .await;
        host
    }

    fn start_sshd(&self, n: u8) {
        let d = self.dir.display();
        ok(&format!(
            "ssh-keygen -q -t ed25519 -N '' -f {d}/host_key && ssh-keygen -q -t ed25519 -N '' -f {d}/id && \
             cp {d}/id.pub {d}/authorized_keys && chmod 600 {d}/authorized_keys && mkdir -p /run/sshd && \
             echo \"10.231.{n}.2 $(cut -d' ' -f1-2 {d}/host_key.pub)\" > {d}/known_hosts"
        ));
        let sshd_config = format!(
            "ListenAddress 10.231.{n}.2\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             UsePAM no\nStrictModes no\nPidFile {d}/sshd.pid\nMaxStartups 100\nMaxSessions 100\nLogLevel VERBOSE\n"
        );
        std::fs::write(self.dir.join("sshd_config"), sshd_config).expect("sshd_config");
        let ssh_config = format!(
            "Host *\n  IdentityFile {d}/id\n  IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  \
             StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 30\n"
        );
        std::fs::write(self.dir.join("ssh_config"), ssh_config).expect("ssh_config");
        let wrapper = self.dir.join("bin/ssh");
        std::fs::write(&wrapper, format!("#!/bin/sh\nexec /usr/bin/ssh -F {d}/ssh_config \"$@\"\n"))
            .expect("ssh");
        ok(&format!("chmod 755 {}", wrapper.display()));
        ok(&format!(
            "ip netns exec {} sh -c 'mount -t tmpfs tmpfs /run && mkdir -p /run/sshd && \
             touch /run/docker.sock && mount --bind {d}/docker.sock /run/docker.sock && \
             exec /usr/sbin/sshd -f {d}/sshd_config -E {d}/sshd.log' </dev/null",
            self.namespace
        ));
    }

    /// This machine's address as the host sees it (`10.231.N.1`): a service of the test's
    /// listening there (a registry) is reachable from both.
    pub fn peer_address(&self) -> Ipv4Addr {
        let [a, b, c, _] = self.address.octets();
        Ipv4Addr::new(a, b, c, 1)
    }

    /// How the deploying side reaches this engine: `ssh://root@10.231.N.2`.
    pub fn engine(&self) -> String {
        format!("ssh://root@{}", self.address)
    }

    /// A PATH whose `ssh` knows this host's key and ours; give it to the command that deploys.
    pub fn path(&self) -> String {
        let rest = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        format!("{}:{rest}", self.dir.join("bin").display())
    }

    /// `docker args…` against this engine through its socket (the test's own view, not SSH):
    /// stdout, or `None` if it failed.
    pub async fn docker_local(&self, args: &[&str]) -> Option<String> {
        let socket = format!("unix://{}", self.dir.join("docker.sock").display());
        let out = Command::new("docker").args(["--host", &socket]).args(args).output().await.ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Where the host keeps its files (logs: dockerd.log, sshd.log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last lines of sshd's and dockerd's logs, for a failed assertion's message.
    pub fn logs(&self) -> String {
        let tail = |name: &str| {
            let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(15)..].join("\n")
        };
        format!("--- sshd.log\n{}\n--- dockerd.log\n{}", tail("sshd.log"), tail("dockerd.log"))
    }
}

/// `ip netns exec` gives its command a fresh /sys without cgroups: the commands that mount
/// them as this machine has them (cgroup v2, or each v1 hierarchy), so the engine can apply
/// CPU and memory limits.
fn cgroup_mounts() -> String {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return "mount -t cgroup2 none /sys/fs/cgroup".into();
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut script = vec!["mount -t tmpfs cgroup /sys/fs/cgroup".to_string()];
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [_, point, "cgroup", options, ..] = fields[..]
            && point.starts_with("/sys/fs/cgroup/")
        {
            let wanted: Vec<&str> = options
                .split(',')
                .filter(|o| !matches!(*o, "rw" | "ro" | "relatime" | "nosuid" | "nodev" | "noexec"))
                .collect();
            let options = if wanted.iter().any(|o| o.starts_with("name=")) && !wanted.contains(&"none") {
                format!("none,{}", wanted.join(","))
            } else {
                wanted.join(",")
            };
            script.push(format!("mkdir -p {point} && mount -t cgroup -o {options} cgroup {point}"));
        }
    }
    script.join(" && ")
}

impl Drop for RemoteHost {
    fn drop(&mut self) {
        let d = self.dir.display();
        let _ = sh(&format!("kill $(cat {d}/sshd.pid 2>/dev/null) 2>/dev/null"));
        let socket = format!("unix://{d}/docker.sock");
        let _ = sh(&format!("docker --host {socket} rm -f $(docker --host {socket} ps -aq) >/dev/null 2>&1"));
        let _ = sh(&format!(
            "pid=$(cat {d}/docker.pid 2>/dev/null) && kill $pid && \
             for i in $(seq 1 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done"
        ));
        let _ = sh(&format!("ip netns del {} ; ip link del {} 2>/dev/null", self.namespace, self.veth));
        let _ = sh(&format!("umount -R {d}/data 2>/dev/null; umount -R {d}/exec 2>/dev/null; rm -rf {d}"));
    }
}
