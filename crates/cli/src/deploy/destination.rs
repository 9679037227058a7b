//! The destinations file, `deploy.toml`: each destination's engine, files, public address,
//! secrets and health timeout, checked with every problem reported at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::Engine;
use crate::Failure;

/// The destinations file, at the project's root.
pub const FILE: &str = "deploy.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationsFile {
    #[serde(default)]
    destinations: BTreeMap<String, Raw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    engine: String,
    public_url: Option<String>,
    /// Default: [`default_files`].
    files: Option<Vec<PathBuf>>,
    #[serde(default = "default_publish")]
    publish: String,
    #[serde(default = "default_secrets")]
    secrets: PathBuf,
    #[serde(default = "default_health_timeout")]
    health_timeout: String,
    registry: Option<String>,
}

/// The base and prod files, and docker-compose.backup.yml when the project has it: backups
/// are on in production unless a destination lists its files without it.
fn default_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = vec!["docker-compose.yml".into(), "docker-compose.prod.yml".into()];
    if root.join(BACKUP_FILE).is_file() {
        files.push(BACKUP_FILE.into());
    }
    files
}

/// The compose overlay that adds continuous backups.
const BACKUP_FILE: &str = "docker-compose.backup.yml";

fn default_publish() -> String {
    "0.0.0.0:8080".into()
}

fn default_secrets() -> PathBuf {
    "secrets".into()
}

fn default_health_timeout() -> String {
    "60s".into()
}

/// One destination, checked: every field is usable.
#[derive(Debug, Clone)]
pub struct Destination {
    pub name: String,
    pub engine: Engine,
    /// The site's public address (`SLIPWAY_PUBLIC_URL`).
    pub public_url: String,
    /// The compose files, base first.
    pub files: Vec<PathBuf>,
    /// Where the gateway's port is published on the host (`SLIPWAY_HTTP_PUBLISH`).
    pub publish: String,
    /// The folder of secret files on the deployer's machine, one file per secret.
    pub secrets: PathBuf,
    /// How long a release may take to become healthy.
    pub health_timeout: Duration,
    /// The registry images go through (`host[:port][/path]`): pushed from the deployer's
    /// machine, pulled by the destination. Without one they are streamed over the engine's
    /// connection.
    pub registry: Option<String>,
}

/// The destination called `name` in `root`'s deploy.toml, or a message saying what is wrong,
/// every problem of that destination at once.
pub fn find(root: &Path, name: &str) -> Result<Destination, Failure> {
    let path = root.join(FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Failure::Failed(anyhow::anyhow!(
            "cannot read {} ({e}): run slipway from the project's root, where deploy.toml names \
             each destination (see the README's Deploys section)",
            path.display()
        ))
    })?;
    let file: DestinationsFile = toml::from_str(&text)
        .map_err(|e| Failure::Failed(anyhow::anyhow!("{} is not valid: {e}", path.display())))?;
    let Some(raw) = file.destinations.get(name) else {
        let known: Vec<&str> = file.destinations.keys().map(String::as_str).collect();
        let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
        return Err(Failure::Failed(anyhow::anyhow!(
            "no destination called {name:?} in {}; known: {known}",
            path.display()
        )));
    };
    check(name, raw, root).map_err(|problems| {
        Failure::Failed(anyhow::anyhow!(
            "destination {name:?} in {}:\n  - {}",
            path.display(),
            problems.join("\n  - ")
        ))
    })
}

fn check(name: &str, raw: &Raw, root: &Path) -> Result<Destination, Vec<String>> {
    let files = raw.files.clone().unwrap_or_else(|| default_files(root));
    let mut problems = Vec::new();
    let engine = Engine::parse(&raw.engine).map_err(|why| problems.push(format!("engine: {why}"))).ok();
    let public_url = match &raw.public_url {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => Some(url.clone()),
        Some(url) => {
            problems.push(format!("public_url: expected an http(s):// address, got {url:?}"));
            None
        }
        None => {
            problems.push("public_url: required (the site's address, for links in emails)".into());
            None
        }
    };
    if files.is_empty() {
        problems.push("files: name at least the base compose file".into());
    }
    let health_timeout = kit::config::parse_duration(&raw.health_timeout)
        .map_err(|_| {
            problems.push(format!(
                "health_timeout: expected a duration such as 60s, got {:?}",
                raw.health_timeout
            ))
        })
        .ok();
    let registry = raw.registry.as_deref().map(str::trim).filter(|r| !r.is_empty());
    if let Some(registry) = registry
        && (registry.contains("://") || registry.ends_with('/') || registry.contains(char::is_whitespace))
    {
        problems.push(format!(
            "registry: expected host[:port][/path] without a scheme or a trailing slash, got {registry:?}"
        ));
    }
    match (engine, public_url, health_timeout) {
        (Some(engine), Some(public_url), Some(health_timeout)) if problems.is_empty() => Ok(Destination {
            name: name.to_string(),
            engine,
            public_url,
            files,
            publish: raw.publish.clone(),
            secrets: raw.secrets.clone(),
            health_timeout,
            registry: registry.map(str::to_string),
        }),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(engine: &str) -> Raw {
        Raw {
            engine: engine.into(),
            public_url: Some("https://example.com".into()),
            files: None,
            publish: default_publish(),
            secrets: default_secrets(),
            health_timeout: default_health_timeout(),
            registry: None,
        }
    }

    #[test]
    fn every_problem_of_a_destination_is_reported_at_once() {
        let bad = Raw {
            health_timeout: "soon".into(),
            public_url: Some("example.com".into()),
            registry: Some("https://registry.example.com/".into()),
            ..raw("ftp://x")
        };
        let problems = check("prod", &bad, Path::new(".")).expect_err("four problems");
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("engine:"), "{problems:?}");
        assert!(problems[3].starts_with("registry: expected host[:port][/path]"), "{problems:?}");
    }

    #[test]
    fn a_destination_without_optional_fields_takes_the_defaults() {
        let empty = std::env::temp_dir().join(format!("slipway-dest-{}", std::process::id()));
        std::fs::create_dir_all(&empty).expect("folder");
        let d = check("staging", &raw("ssh://deploy@10.0.0.5"), &empty).expect("valid");
        assert_eq!(d.health_timeout, Duration::from_secs(60));
        assert_eq!(d.files, [PathBuf::from("docker-compose.yml"), "docker-compose.prod.yml".into()]);
        assert_eq!(d.publish, "0.0.0.0:8080");
        assert_eq!(d.registry, None, "images are streamed");
        // A project with the backup overlay deploys it unless the destination says otherwise.
        std::fs::write(empty.join(BACKUP_FILE), "services: {}\n").expect("overlay");
        let d = check("staging", &raw("ssh://deploy@10.0.0.5"), &empty).expect("valid");
        assert_eq!(d.files.last(), Some(&PathBuf::from(BACKUP_FILE)));
        let listed = Raw { files: Some(vec!["docker-compose.yml".into()]), ..raw("ssh://deploy@10.0.0.5") };
        assert_eq!(check("staging", &listed, &empty).expect("valid").files.len(), 1);
        let _ = std::fs::remove_dir_all(&empty);
    }
}
