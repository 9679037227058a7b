//! The project's wiring: what every service the CLI knows needs in the repository's files.

use std::collections::BTreeMap;
use std::path::Path;

use super::compose::{ComposeFile, Dockerfile};
use super::report::Report;
use crate::registry::{Entry, SERVICES};

const BASE: &str = "docker-compose.yml";
const DEV: &str = "docker-compose.override.yml";
const PROD: &str = "docker-compose.prod.yml";
const GUIDE: &str = "docs/adding-a-service.md";

/// The compose files, the Dockerfile, the scopes and the CLI's registry, read once.
struct Files {
    base: ComposeFile,
    dev: Option<ComposeFile>,
    prod: Option<ComposeFile>,
    dockerfile: Option<Dockerfile>,
    scopes: String,
    registry: String,
}

/// Checks every service (the project's `services/*` crates and the ones this CLI was built
/// with), the routes, the secrets and the NATS overlay.
pub(super) fn check(dir: &Path, report: &mut Report) {
    let Some(files) = read(dir, report) else { return };
    let names = services(dir);
    for name in &names {
        let name = name.as_str();
        let entry = SERVICES.iter().copied().find(|e| e.name() == name);
        let before = report.problems();
        service(dir, &files, name, entry, report);
        if report.problems() == before {
            report.ok(format!(
                "{name}: Dockerfile target, entries in {BASE}, {DEV} and {PROD}, labels, migrations"
            ));
        }
    }
    routes(&files.base, report);
    secrets(&files.base, report);
    super::nats::check(dir, &names, report);
}

/// The crates (and Python apps) in `services/`, then any service this CLI knows that has none, by name.
fn services(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("services"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").is_file() || e.path().join("app.py").is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    for entry in SERVICES {
        if !names.iter().any(|n| n == entry.name()) {
            names.push(entry.name().to_string());
        }
    }
    names
}

fn read(dir: &Path, report: &mut Report) -> Option<Files> {
    let mut compose = |name: &str| match ComposeFile::read(dir, name) {
        Ok(Some(file)) => Some(file),
        Ok(None) => {
            report.problem(
                format!("no {name} in {}", dir.display()),
                "run the doctor from the project's root, or pass --dir",
            );
            None
        }
        Err(e) => {
            report.problem(e, format!("fix the YAML (`docker compose -f {name} config` shows where)"));
            None
        }
    };
    let base = compose(BASE)?;
    let (dev, prod) = (compose(DEV), compose(PROD));
    let dockerfile = match std::fs::read_to_string(dir.join("Dockerfile")) {
        Ok(text) => Some(Dockerfile::parse(&text)),
        Err(e) => {
            report.problem(
                format!("cannot read the Dockerfile: {e}"),
                "every service's image is built from it",
            );
            None
        }
    };
    let text = |path: &str| std::fs::read_to_string(dir.join(path)).unwrap_or_default();
    let (scopes, registry) = (text("crates/project/src/lib.rs"), text("crates/cli/src/registry.rs"));
    Some(Files { base, dev, prod, dockerfile, scopes, registry })
}

fn service(dir: &Path, files: &Files, name: &str, entry: Option<&dyn Entry>, report: &mut Report) {
    let scope = name.to_ascii_uppercase();
    if !files.scopes.contains(&format!("\"{scope}\"")) {
        report.problem(
            format!("{name}: its settings' scope {scope} is not in project::SCOPES"),
            format!("add \"{scope}\" to SCOPES in crates/project/src/lib.rs"),
        );
    }
    let registered = files.registry.contains(&format!("&Of::<{name}::Config>"))
        || files.registry.contains(&format!("external!(\"{name}\""));
    if !registered {
        report.problem(
            format!(
                "{name}: not in the CLI's registry, so `slipway migrate`, `dev` and `env check` leave it out"
            ),
            format!(
                "add `&Of::<{name}::Config>(PhantomData),` to SERVICES in crates/cli/src/registry.rs and \
                 `{name}.workspace = true` to crates/cli/Cargo.toml"
            ),
        );
    }
    // The port the service listens on: its configuration's, when this CLI was built with it,
    // else the one its route names.
    let port =
        entry.and_then(|e| e.port()).or_else(|| files.base.labels(name).get("slipway.port")?.parse().ok());
    if let Some(dockerfile) = &files.dockerfile {
        match dockerfile.stage(name) {
            None => report.problem(
                format!("{name}: the Dockerfile has no target {name}"),
                format!("add a stage `FROM runtime AS {name}` that copies /out/{name} ({GUIDE})"),
            ),
            Some(exposed) => {
                if let Some(port) = port.filter(|p| !exposed.contains(p)) {
                    report.problem(
                        format!("{name}: the Dockerfile's {name} stage does not EXPOSE {port}, the port it listens on"),
                        format!("add `EXPOSE {port}` to that stage"),
                    );
                }
            }
        }
    }
    if !files.base.has(name) {
        report.problem(
            format!("{name}: {BASE} has no service {name}"),
            format!("add it, built from the Dockerfile's target {name} ({GUIDE})"),
        );
        return;
    }
    match files.base.build_target(name) {
        Some(target) if target == name => {}
        other => report.problem(
            format!("{name}: in {BASE} it builds target {}", other.as_deref().unwrap_or("(none)")),
            format!("set `build: {{ context: ., target: {name} }}`"),
        ),
    }
    for file in [&files.dev, &files.prod].into_iter().flatten() {
        if !file.has(name) {
            report.problem(
                format!("{name}: {} has no service {name}", file.name),
                format!("add its entry there, as the other services have ({GUIDE})"),
            );
        }
    }
    labels(&files.base, name, port, report);
    migrations(dir, &files.base, name, entry, report);
}

/// Every service but the gateway says how it is deployed; a routed one names its port.
fn labels(base: &ComposeFile, name: &str, port: Option<u16>, report: &mut Report) {
    let labels = base.labels(name);
    if name != "gateway" && !labels.contains_key("slipway.deploy") {
        report.problem(
            format!("{name}: no slipway.deploy label in {BASE}, so `slipway deploy` does not know how to replace it"),
            "add the label `slipway.deploy: blue-green`",
        );
    }
    let routed = labels.contains_key("slipway.path") || labels.contains_key("slipway.host");
    if !routed {
        return;
    }
    match (labels.get("slipway.port"), port) {
        (None, _) => report.problem(
            format!("{name}: routed by the gateway but has no slipway.port label"),
            format!("add `slipway.port: \"{}\"`", port.map_or("PORT".into(), |p| p.to_string())),
        ),
        (Some(label), Some(port)) if label.parse::<u16>().ok() != Some(port) => report.problem(
            format!("{name}: slipway.port is {label:?}, but {name} listens on {port}"),
            format!("set `slipway.port: \"{port}\"`"),
        ),
        _ => {}
    }
}

/// A service with a schema has its migrations folder, and the migrate job makes its role.
fn migrations(dir: &Path, base: &ComposeFile, name: &str, entry: Option<&dyn Entry>, report: &mut Report) {
    let role_var = format!("SLIPWAY_{}_DATABASE_ROLE", name.to_ascii_uppercase());
    // Its migrations' folder: as this CLI was built, else the convention for a service
    // given a database role.
    let folders: Vec<String> = match entry {
        Some(entry) => {
            entry.migrations().iter().filter(|m| m.service() == name).map(|m| m.dir().to_string()).collect()
        }
        None if base.environment(name).contains_key(&role_var) => vec![format!("services/{name}/migrations")],
        None => Vec::new(),
    };
    for folder in folders {
        if !dir.join(&folder).is_dir() {
            report.problem(
                format!("{name}: its migrations folder {folder} is missing"),
                format!("restore it (git checkout -- {folder}), or `slipway migrate new {name} first`"),
            );
        }
    }
    if let Some(role) = base.environment(name).get(&role_var)
        && base.environment("migrate").get(&role_var) != Some(role)
    {
        report.problem(
            format!("{name}: connects as role {role}, which the migrate job does not create"),
            format!("give the migrate service {role_var}: {role} and {role_var}_PASSWORD_FILE in {BASE}"),
        );
    }
}

/// No two services claim the same host and path.
fn routes(base: &ComposeFile, report: &mut Report) {
    let mut claimed: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut clash = false;
    for name in base.services() {
        let labels = base.labels(&name);
        let path = match (labels.get("slipway.path"), labels.contains_key("slipway.host")) {
            (Some(path), _) => path.clone(),
            (None, true) => "/".to_string(),
            (None, false) => continue,
        };
        let hosts = labels.get("slipway.host").cloned().unwrap_or_else(|| "*".into());
        for host in hosts.split(',').map(str::trim) {
            let key = (host.to_string(), path.trim_end_matches('/').to_string());
            if let Some(first) = claimed.get(&key) {
                clash = true;
                report.problem(
                    format!("{first} and {name} both claim the route {host}{path}"),
                    format!("give one of them another slipway.path or slipway.host in {BASE}"),
                );
            } else {
                claimed.insert(key, name.clone());
            }
        }
    }
    if !clash {
        report.ok(format!("routes: {} claimed, no two alike", claimed.len()));
    }
}

/// Every secret a service is given is declared at the top level.
fn secrets(base: &ComposeFile, report: &mut Report) {
    let declared = base.secrets();
    for name in base.services() {
        for secret in base.service_secrets(&name) {
            if !declared.contains_key(&secret) {
                report.problem(
                    format!("{name}: is given the secret {secret}, which {BASE} does not declare"),
                    format!("add `{secret}: {{ file: ./secrets/{secret} }}` under the top-level secrets"),
                );
            }
        }
    }
}
