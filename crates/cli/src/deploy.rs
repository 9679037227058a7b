//! Destinations: where a stack is shipped, as named in the committed `deploy.toml`.
//!
//! ```toml
//! [destinations.prod]
//! engine = "ssh://deploy@203.0.113.10"   # or unix:///var/run/docker.sock, or context:NAME
//! ```

mod engine;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

pub use engine::Engine;

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
}

/// One destination, checked: every field is usable.
#[derive(Debug, Clone)]
pub struct Destination {
    pub name: String,
    pub engine: Engine,
}

/// The destination called `name` in `root`'s deploy.toml, or a message saying what is wrong.
pub fn find(root: &Path, name: &str) -> Result<Destination, Failure> {
    let path = root.join(FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Failure::Failed(anyhow::anyhow!(
            "cannot read {} ({e}): run slipway from the project's root, where deploy.toml names \
             each destination (see the README's Destinations section)",
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
    let engine = Engine::parse(&raw.engine).map_err(|why| {
        Failure::Failed(anyhow::anyhow!("destination {name:?} in {}: engine: {why}", path.display()))
    })?;
    Ok(Destination { name: name.to_string(), engine })
}
