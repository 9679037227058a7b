//! The NATS overlay's wiring: every Rust service on the bus moves to JetStream with the rest.

use std::path::Path;

use super::compose::ComposeFile;
use super::report::Report;

const OVERLAY: &str = "docker-compose.nats.yml";

/// When the project has the overlay, every service whose crate depends on the bus is in it
/// with a `nats://` bus URL: one left out would stay on the Postgres bus, publishing to groups
/// nobody claims from and deaf to what the others publish.
pub(super) fn check(dir: &Path, services: &[String], report: &mut Report) {
    let overlay = match ComposeFile::read(dir, OVERLAY) {
        Ok(Some(overlay)) => overlay,
        Ok(None) => return,
        Err(e) => {
            report.problem(e, format!("fix the YAML (`docker compose -f {OVERLAY} config` shows where)"));
            return;
        }
    };
    let mut moved = Vec::new();
    for name in services.iter().filter(|name| on_the_bus(dir, name)) {
        let url = overlay.environment(name).get("SLIPWAY_BUS_URL").cloned().unwrap_or_default();
        if url.starts_with("nats://") {
            moved.push(name.as_str());
        } else {
            report.problem(
                format!(
                    "{name}: on the bus but not moved to NATS by {OVERLAY}, so with that overlay it would \
                     stay on the Postgres bus, unheard by the services that moved and deaf to them"
                ),
                format!("add `  {name}: *on-nats` under services: in {OVERLAY}"),
            );
        }
    }
    if !moved.is_empty() {
        report.ok(format!("bus overlay: {} on NATS in {OVERLAY}", moved.join(", ")));
    }
}

/// Whether the service's crate depends on the bus (in `[dependencies]`, not only in tests).
fn on_the_bus(dir: &Path, name: &str) -> bool {
    let manifest =
        std::fs::read_to_string(dir.join("services").join(name).join("Cargo.toml")).unwrap_or_default();
    toml::from_str::<toml::Table>(&manifest)
        .ok()
        .and_then(|m| m.get("dependencies")?.as_table().map(|d| d.contains_key("bus")))
        .unwrap_or(false)
}
