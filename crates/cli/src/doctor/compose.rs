//! Just enough of a compose file and a Dockerfile for the doctor: services, build targets,
//! labels, environments, secrets; stages and the ports they expose.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use yaml_serde::{Mapping, Value};

/// A compose file, merge keys (`<<: *service`) applied.
#[derive(Debug)]
pub(crate) struct ComposeFile {
    pub(super) name: String,
    doc: Value,
}

impl ComposeFile {
    /// The file `name` in `dir`: `Ok(None)` when it does not exist, `Err` when it is not YAML.
    pub(crate) fn read(dir: &Path, name: &str) -> Result<Option<Self>, String> {
        let path = dir.join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let mut doc: Value =
            yaml_serde::from_str(&text).map_err(|e| format!("{name} is not valid YAML: {e}"))?;
        doc.apply_merge().map_err(|e| format!("{name}: {e}"))?;
        Ok(Some(Self { name: name.to_string(), doc }))
    }

    /// The names of its services.
    pub(crate) fn services(&self) -> Vec<String> {
        self.doc
            .get("services")
            .and_then(Value::as_mapping)
            .map(|m| m.keys().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    }

    fn service(&self, name: &str) -> Option<&Mapping> {
        self.doc.get("services")?.get(name)?.as_mapping()
    }

    /// Whether it has a service called `name`.
    pub(super) fn has(&self, name: &str) -> bool {
        self.service(name).is_some()
    }

    /// The service's build target, if it names one.
    pub(super) fn build_target(&self, name: &str) -> Option<String> {
        let build = self.service(name)?.get("build")?;
        build.get("target")?.as_str().map(str::to_string)
    }

    /// The service's labels, given as a map or as `key=value` strings.
    pub(crate) fn labels(&self, name: &str) -> BTreeMap<String, String> {
        self.pairs(name, "labels")
    }

    /// The service's `environment`, given as a map or as `KEY=value` strings.
    pub(super) fn environment(&self, name: &str) -> BTreeMap<String, String> {
        self.pairs(name, "environment")
    }

    fn pairs(&self, name: &str, key: &str) -> BTreeMap<String, String> {
        let Some(value) = self.service(name).and_then(|s| s.get(key)) else { return BTreeMap::new() };
        match value {
            Value::Mapping(map) => {
                map.iter().filter_map(|(k, v)| Some((k.as_str()?.to_string(), scalar(v)?))).collect()
            }
            Value::Sequence(list) => list
                .iter()
                .filter_map(Value::as_str)
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    /// The secrets the service is given (short or long syntax).
    pub(super) fn service_secrets(&self, name: &str) -> Vec<String> {
        let Some(list) = self.service(name).and_then(|s| s.get("secrets")).and_then(Value::as_sequence)
        else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|s| s.as_str().or_else(|| s.get("source").and_then(Value::as_str)))
            .map(str::to_string)
            .collect()
    }

    /// The top-level secrets and the files they are read from.
    pub(super) fn secrets(&self) -> BTreeMap<String, Option<PathBuf>> {
        self.doc
            .get("secrets")
            .and_then(Value::as_mapping)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| {
                        let file = v.get("file").and_then(Value::as_str).map(PathBuf::from);
                        Some((k.as_str()?.to_string(), file))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A Dockerfile's named stages and the ports each exposes.
#[derive(Debug, Default)]
pub(super) struct Dockerfile {
    stages: BTreeMap<String, Vec<u16>>,
}

impl Dockerfile {
    /// Parses `FROM … AS name` and `EXPOSE` lines (continuation lines are not needed here).
    pub(super) fn parse(text: &str) -> Self {
        let mut stages: BTreeMap<String, Vec<u16>> = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in text.lines().map(str::trim) {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [from, .., as_, name]
                    if from.eq_ignore_ascii_case("FROM") && as_.eq_ignore_ascii_case("AS") =>
                {
                    current = Some(name.to_string());
                    stages.entry(name.to_string()).or_default();
                }
                [from, ..] if from.eq_ignore_ascii_case("FROM") => current = None,
                [expose, ports @ ..] if expose.eq_ignore_ascii_case("EXPOSE") => {
                    if let Some(stage) = &current {
                        let ports =
                            ports.iter().filter_map(|p| p.trim_end_matches("/tcp").parse::<u16>().ok());
                        stages.entry(stage.clone()).or_default().extend(ports);
                    }
                }
                _ => {}
            }
        }
        Self { stages }
    }

    /// The ports stage `name` exposes, or `None` when there is no such stage.
    pub(super) fn stage(&self, name: &str) -> Option<&[u16]> {
        self.stages.get(name).map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::Dockerfile;

    #[test]
    fn stages_and_their_exposed_ports_are_read() {
        let file = Dockerfile::parse(
            "FROM rust:1 AS build\nRUN cargo build\nFROM debian AS runtime\n\
             FROM runtime AS gateway\nEXPOSE 8080 8443/tcp\nfrom runtime as auth\nexpose 8081\n",
        );
        assert_eq!(file.stage("gateway"), Some(&[8080, 8443][..]));
        assert_eq!(file.stage("auth"), Some(&[8081][..]));
        assert_eq!(file.stage("build"), Some(&[][..]));
        assert_eq!(file.stage("web"), None);
    }
}
