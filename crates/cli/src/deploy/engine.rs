//! The Docker engine of a destination, and the `docker` command that reaches it.

use std::process::Stdio;

use tokio::process::Command;

/// How the deployer's `docker` reaches a destination's engine: nothing is installed on the
/// server but Docker (and sshd, for `ssh://`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// `unix:///var/run/docker.sock`, `ssh://user@host[:port]` or `tcp://host:2376` (TLS from
    /// `DOCKER_CERT_PATH`): given to `docker --host`.
    Host(String),
    /// `context:NAME`: a Docker context of the deployer's.
    Context(String),
}

impl Engine {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(name) = s.strip_prefix("context:") {
            return if name.is_empty() || name.contains(char::is_whitespace) {
                Err(format!("expected context:NAME, got {s:?}"))
            } else {
                Ok(Self::Context(name.to_string()))
            };
        }
        let valid = ["unix:///", "ssh://", "tcp://"].iter().any(|p| s.starts_with(p) && s.len() > p.len());
        if valid && !s.contains(char::is_whitespace) {
            Ok(Self::Host(s.to_string()))
        } else {
            Err(format!("expected unix:///path/docker.sock, ssh://user@host or context:NAME, got {s:?}"))
        }
    }

    /// `docker` with this engine chosen, and nothing inherited that could choose another.
    pub fn docker(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env_remove("DOCKER_HOST").env_remove("DOCKER_CONTEXT").stdin(Stdio::null());
        match self {
            Self::Host(host) => cmd.args(["--host", host]),
            Self::Context(name) => cmd.args(["--context", name]),
        };
        cmd
    }

    /// `docker args…` on this engine, and what it printed. A connection that failed before
    /// the request was sent (an SSH link refused or cut while opening) is tried four more
    /// times, 1, 2, 4 and 8 s apart: the engine never saw the request, so any command may be
    /// repeated.
    pub async fn output(&self, args: &[&str]) -> Result<std::process::Output, crate::Failure> {
        let mut attempt = 1;
        loop {
            let out = self.docker().args(args).output().await.map_err(|e| {
                crate::Failure::Failed(anyhow::anyhow!(
                    "cannot run `docker` ({e}): install Docker's command-line client"
                ))
            })?;
            let said = String::from_utf8_lossy(&out.stderr);
            let unconnected = !out.status.success() && said.contains("Cannot connect to the Docker daemon");
            if !unconnected || attempt == 5 {
                return Ok(out);
            }
            let pause = std::time::Duration::from_secs(1 << (attempt - 1));
            super::report::warn(format!(
                "could not connect to {} ({}); trying again in {pause:?}",
                self.describe(),
                said.trim()
            ));
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    /// `docker compose` against this engine (the compose files are read here, on the
    /// deployer's machine).
    pub fn compose(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.stdin(Stdio::null()).arg("compose");
        match self {
            Self::Host(host) => cmd.env("DOCKER_HOST", host).env_remove("DOCKER_CONTEXT"),
            Self::Context(name) => cmd.env("DOCKER_CONTEXT", name).env_remove("DOCKER_HOST"),
        };
        cmd
    }

    /// A description for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Host(host) => host.clone(),
            Self::Context(name) => format!("Docker context {name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Engine;

    #[test]
    fn engines_are_a_socket_ssh_tcp_or_a_context() {
        assert_eq!(Engine::parse("ssh://deploy@h"), Ok(Engine::Host("ssh://deploy@h".into())));
        assert_eq!(Engine::parse("context:prod"), Ok(Engine::Context("prod".into())));
        assert!(Engine::parse("unix:///var/run/docker.sock").is_ok());
        for bad in ["", "ssh://", "http://h", "context:", "/var/run/docker.sock"] {
            assert!(Engine::parse(bad).is_err(), "{bad:?} is refused");
        }
    }
}
