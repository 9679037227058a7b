//! A private image registry for deploy tests: Debian's `docker-registry` (the CNCF
//! distribution registry) over TLS with a certificate made for the test, which every engine
//! on this machine trusts through `/etc/docker/certs.d/<host:port>/ca.crt` (read at each
//! push and pull, so no daemon restarts).

use std::net::{IpAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

/// A running registry; stopped, and its trust removed, on drop.
#[derive(Debug)]
pub struct Registry {
    child: std::process::Child,
    dir: PathBuf,
    trust: PathBuf,
    /// `ip:port`, as images name it.
    pub addr: String,
}

impl Registry {
    /// Starts a registry listening on `ip` (an address every engine that uses it can reach);
    /// returns once it answers.
    pub async fn start(ip: IpAddr) -> Self {
        let port = TcpListener::bind((ip, 0)).expect("a free port").local_addr().expect("addr").port();
        let addr = format!("{ip}:{port}");
        let dir = std::env::temp_dir().join(format!("slipway-registry-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("storage")).expect("registry folder");
        let (crt, key) = crate::tls::self_signed(&dir, "registry", &format!("IP:{ip}"));
        let config = format!(
            "version: 0.1\nlog: {{ level: warn }}\nstorage: {{ filesystem: {{ rootdirectory: {} }} }}\n\
             http: {{ addr: \"{addr}\", tls: {{ certificate: {}, key: {} }} }}\n",
            dir.join("storage").display(),
            crt.display(),
            key.display()
        );
        std::fs::write(dir.join("config.yml"), config).expect("registry config");
        let trust = PathBuf::from(format!("/etc/docker/certs.d/{addr}"));
        std::fs::create_dir_all(&trust).expect("certs.d (the tests run as root)");
        std::fs::copy(&crt, trust.join("ca.crt")).expect("trust the registry");
        let log = std::fs::File::create(dir.join("registry.log")).expect("log");
        let child = std::process::Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("docker-registry runs (Debian's docker-registry package)");
        let registry = Self { child, dir, trust, addr };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(&registry.addr).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the registry did not listen: {}",
                registry.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        registry
    }

    /// The registry's log, for a failed assertion's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// The repositories it holds (its storage, read directly).
    pub fn repositories(&self) -> Vec<String> {
        let root = self.dir.join("storage/docker/registry/v2/repositories");
        let mut found = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.join("_manifests").is_dir() {
                    found.push(path.strip_prefix(&root).unwrap_or(&path).display().to_string());
                } else if path.is_dir() && !entry.file_name().to_string_lossy().starts_with('_') {
                    stack.push(path);
                }
            }
        }
        found.sort();
        found
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.trust);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
