//! `slipway stack deploy`: the compose files on Docker Swarm, with backups when the project
//! has docker-compose.backup.yml. `docker stack deploy` reads the older Compose file format 3 schema, which has no `depends_on` conditions, `build` or
//! `develop`; this drops those keys from copies of docker-compose.yml and
//! docker-compose.prod.yml and hands the copies to `docker stack deploy`. Nothing is lost:
//! Swarm ignores start order anyway, and under Swarm each service applies its schema when it
//! starts (under the migration lock), as the prod file asks.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use yaml_serde::Value;

use crate::Failure;

mod node;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Deploy or update the stack from docker-compose.yml and docker-compose.prod.yml, and
    /// docker-compose.backup.yml when the project has it.
    Deploy {
        /// The stack's name.
        #[arg(default_value = "slipway")]
        name: String,
        /// Only check: print what Swarm would deploy (`docker stack config`), deploy nothing.
        #[arg(long)]
        check: bool,
        /// A further compose file laid over the two (site-specific settings); repeatable.
        #[arg(long = "file", short = 'f', value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Leave docker-compose.backup.yml out: no WAL archiving and no backup service.
        #[arg(long)]
        no_backup: bool,
    },
}

const FILES: [&str; 2] = ["docker-compose.yml", "docker-compose.prod.yml"];
/// Laid over the two when present, unless --no-backup.
const BACKUP: &str = "docker-compose.backup.yml";
/// Keys of a service that Compose file format 3 does not know.
const COMPOSE_ONLY: [&str; 3] = ["depends_on", "build", "develop"];

pub fn run(cmd: Command) -> Result<(), Failure> {
    let Command::Deploy { name, check, files, no_backup } = cmd;
    let backup = (!no_backup && Path::new(BACKUP).exists()).then(|| PathBuf::from(BACKUP));
    if backup.is_none() && !no_backup {
        eprintln!(
            "warning: no {BACKUP} here, so nothing backs up the stack's database; pass --no-backup \
             if that is intended"
        );
    }
    let mut copies = Copies(Vec::new());
    let all = FILES.iter().map(PathBuf::from).chain(backup).chain(files);
    for (i, file) in all.enumerate() {
        let shown = file.display();
        let text = std::fs::read_to_string(&file).map_err(|e| {
            anyhow::anyhow!("cannot read {shown} ({e}): run `slipway stack deploy` from the project's root")
        })?;
        let ready = swarm_ready(&text).with_context(|| format!("{shown} is not valid YAML"))?;
        // In the project's root, so relative paths (env_file, secret files) still resolve.
        let copy = PathBuf::from(format!(".slipway-stack.{i}.yml"));
        std::fs::write(&copy, ready).with_context(|| format!("cannot write {}", copy.display()))?;
        copies.0.push(copy);
    }
    if !check {
        node::ensure()?;
    }
    let mut docker = std::process::Command::new("docker");
    crate::up::pass_socket_group(&mut docker);
    docker.arg("stack").arg(if check { "config" } else { "deploy" });
    for copy in &copies.0 {
        docker.arg("-c").arg(copy);
    }
    if !check {
        docker.arg(&name);
    }
    let status = docker
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run `docker stack` ({e}): install Docker Engine"))?;
    if !status.success() {
        return Err(anyhow::anyhow!(
            "docker stack {} failed (its output is above)",
            if check { "config" } else { "deploy" }
        )
        .into());
    }
    Ok(())
}

/// The files written for one run, removed when it ends.
struct Copies(Vec<PathBuf>);

impl Drop for Copies {
    fn drop(&mut self) {
        self.0.iter().map(PathBuf::as_path).for_each(|p: &Path| drop(std::fs::remove_file(p)));
    }
}

/// The compose file without what Compose file format 3 rejects: the top-level `name`,
/// extension fields (anchors are resolved first), and each service's compose-only keys; and
/// each service's `tmpfs` (which Swarm ignores) as tmpfs mounts, which it honours.
fn swarm_ready(text: &str) -> anyhow::Result<String> {
    let mut doc: Value = yaml_serde::from_str(text)?;
    doc.apply_merge()?;
    if let Some(top) = doc.as_mapping_mut() {
        top.retain(|k, _| k.as_str().is_some_and(|k| k != "name" && !k.starts_with("x-")));
        if let Some(services) = top.get_mut("services").and_then(Value::as_mapping_mut) {
            for (_, service) in services.iter_mut() {
                if let Some(service) = service.as_mapping_mut() {
                    COMPOSE_ONLY.iter().for_each(|k| drop(service.remove(*k)));
                    tmpfs_as_mounts(service);
                }
            }
        }
    }
    Ok(yaml_serde::to_string(&doc)?)
}

/// `tmpfs: [/tmp]` as `volumes: [{ type: tmpfs, target: /tmp }]`.
fn tmpfs_as_mounts(service: &mut yaml_serde::Mapping) {
    let paths: Vec<String> = match service.remove("tmpfs") {
        Some(Value::String(path)) => vec![path],
        Some(Value::Sequence(paths)) => {
            paths.into_iter().filter_map(|p| p.as_str().map(str::to_string)).collect()
        }
        _ => return,
    };
    let volumes = service.entry("volumes".into()).or_insert_with(|| Value::Sequence(Vec::new()));
    if let Some(volumes) = volumes.as_sequence_mut() {
        for path in paths {
            let mut mount = yaml_serde::Mapping::new();
            mount.insert("type".into(), "tmpfs".into());
            mount.insert("target".into(), path.into());
            volumes.push(Value::Mapping(mount));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::swarm_ready;

    #[test]
    fn compose_only_keys_go_and_anchors_are_resolved() {
        let text = "name: x\nx-base: &base\n  restart: always\nservices:\n  a:\n    <<: *base\n    image: a\n    \
                    depends_on:\n      b:\n        condition: service_healthy\n    build: .\n";
        let out = swarm_ready(text).expect("valid");
        let doc: yaml_serde::Value = yaml_serde::from_str(&out).expect("yaml");
        assert_eq!(doc["services"]["a"]["restart"], "always");
        assert_eq!(doc["services"]["a"]["image"], "a");
        for gone in ["depends_on", "build"] {
            assert!(doc["services"]["a"].get(gone).is_none(), "{gone} removed: {out}");
        }
        assert!(doc.get("name").is_none() && doc.get("x-base").is_none(), "{out}");
    }

    #[test]
    fn tmpfs_which_swarm_ignores_becomes_a_tmpfs_mount() {
        let text = "services:\n  a:\n    image: a\n    read_only: true\n    tmpfs: [/tmp]\n    volumes: [\"d:/data\"]\n";
        let out = swarm_ready(text).expect("valid");
        let doc: yaml_serde::Value = yaml_serde::from_str(&out).expect("yaml");
        assert!(doc["services"]["a"].get("tmpfs").is_none(), "{out}");
        assert_eq!(doc["services"]["a"]["volumes"][0], "d:/data");
        assert_eq!(doc["services"]["a"]["volumes"][1]["type"], "tmpfs");
        assert_eq!(doc["services"]["a"]["volumes"][1]["target"], "/tmp");
    }
}
