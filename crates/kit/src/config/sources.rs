//! Gathers the layers of configuration into one map of canonical variable names.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::reader::ConfigError;
use super::{Environment, PREFIX, dotenv};

/// Where a value came from, so an error can say which file or variable to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The TOML file named by `SLIPWAY_CONFIG_FILE`.
    ConfigFile(PathBuf),
    /// A `.env` or `secrets.env` file (dev and test only).
    DotEnv(PathBuf),
    /// The process environment.
    Environment,
    /// A file named by a `…_FILE` variable (a Docker secret).
    SecretFile(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConfigFile(p) => write!(f, "from config file {}", p.display()),
            Self::DotEnv(p) => write!(f, "from {}", p.display()),
            Self::Environment => f.write_str("from the environment"),
            Self::SecretFile(p) => write!(f, "from secret file {}", p.display()),
        }
    }
}

/// Every layer merged: the value and origin of each `SLIPWAY_…` variable, the environment
/// name, and the problems met while reading files.
#[derive(Debug, Clone)]
pub struct Sources {
    pub(super) values: BTreeMap<String, (String, Origin)>,
    pub(super) problems: Vec<ConfigError>,
    pub(super) environment: Environment,
    /// The scopes of the project's other deployables (see [`Sources::with_scopes`]).
    pub(super) scopes: Vec<String>,
}

const ENV_VAR: &str = "SLIPWAY_ENV";
const CONFIG_FILE_VAR: &str = "SLIPWAY_CONFIG_FILE";

impl Sources {
    /// The process environment, plus `.env` and `secrets.env` from the working directory in
    /// dev and test, plus the file named by `SLIPWAY_CONFIG_FILE`; `scopes` are the project's
    /// deployables (see [`Sources::with_scopes`]).
    pub fn from_process(scopes: &[&str]) -> Self {
        Self::load(std::env::vars(), Path::new(".")).with_scopes(scopes)
    }

    /// Names the scopes of the project's deployables (`AUTH`, `WEB`, …). Every binary gets
    /// one shared environment, so a reader skips a variable of another known scope, and
    /// reports one of an unknown scope as a typo. The kit knows no service by name: the
    /// binaries and the CLI pass the list their project keeps.
    #[must_use]
    pub fn with_scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = scopes.iter().map(|s| s.to_ascii_uppercase()).collect();
        self
    }

    /// Only the given variables (as if they were the whole environment) and the files they
    /// name. Tests and tools use this to load a configuration without touching the process.
    pub fn from_vars<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        let vars = vars.into_iter().map(|(k, v)| (k.into(), v.into()));
        Self::load(vars, Path::new("/nonexistent-slipway-dir"))
    }

    /// Like [`Sources::from_process`], reading `.env` files from `dir`.
    pub fn load(vars: impl IntoIterator<Item = (String, String)>, dir: &Path) -> Self {
        let mut problems = Vec::new();
        let process: BTreeMap<String, String> =
            vars.into_iter().filter(|(k, _)| k.starts_with(PREFIX)).collect();

        let mut dotenv_layer = Vec::new();
        for name in [".env", "secrets.env"] {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => match dotenv::parse(&text) {
                    Ok(pairs) => dotenv_layer.extend(
                        pairs
                            .into_iter()
                            .filter(|(k, _)| k.starts_with(PREFIX))
                            .map(|(k, v)| (k, v, path.clone())),
                    ),
                    Err(e) => problems.push(ConfigError::file(&path, e)),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => problems.push(ConfigError::file(&path, e.to_string())),
            }
        }
        let from_dotenv =
            |key: &str| dotenv_layer.iter().rev().find(|(k, _, _)| k == key).map(|(_, v, _)| v.clone());

        let file_layer = match process.get(CONFIG_FILE_VAR).cloned().or_else(|| from_dotenv(CONFIG_FILE_VAR))
        {
            Some(path) => read_config_file(Path::new(&path), &mut problems),
            None => Vec::new(),
        };
        let from_file = |key: &str| file_layer.iter().find(|(k, _, _)| k == key).map(|(_, v, _)| v.clone());

        let env_text =
            process.get(ENV_VAR).cloned().or_else(|| from_dotenv(ENV_VAR)).or_else(|| from_file(ENV_VAR));
        let environment = match env_text {
            None => Environment::Prod,
            Some(text) => text.parse().unwrap_or_else(|expected| {
                problems.push(ConfigError::new(ENV_VAR, format!("expected {expected}, got {text:?}")));
                Environment::Prod
            }),
        };

        let mut values = BTreeMap::new();
        for (k, v, path) in file_layer {
            values.insert(k, (v, Origin::ConfigFile(path)));
        }
        if !environment.is_production_like() {
            for (k, v, path) in dotenv_layer {
                values.insert(k, (v, Origin::DotEnv(path)));
            }
        }
        for (k, v) in process {
            values.insert(k, (v, Origin::Environment));
        }
        resolve_secret_files(&mut values, &mut problems);
        Self { values, problems, environment, scopes: Vec::new() }
    }

    /// The value of a variable after layering, if any layer sets it.
    pub fn get(&self, var: &str) -> Option<&str> {
        self.values.get(var).map(|(v, _)| v.as_str())
    }

    /// The environment this configuration is for.
    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// Starts reading the settings of one scope (`"auth"`, `"mailer"`, …).
    pub fn reader(&self, scope: &str) -> super::Reader<'_> {
        super::Reader::new(self, scope)
    }
}

/// `SLIPWAY_X_FILE=/run/secrets/x` sets `SLIPWAY_X` to the file's content (Docker secrets).
fn resolve_secret_files(values: &mut BTreeMap<String, (String, Origin)>, problems: &mut Vec<ConfigError>) {
    let file_vars: Vec<(String, String)> = values
        .iter()
        .filter(|(k, _)| k.ends_with("_FILE") && k.as_str() != CONFIG_FILE_VAR)
        .map(|(k, (v, _))| (k.clone(), v.clone()))
        .collect();
    for (var, path) in file_vars {
        values.remove(&var);
        let target = var.trim_end_matches("_FILE").to_string();
        match std::fs::read_to_string(&path) {
            Ok(content) => {
                let content = content.trim_end_matches(['\r', '\n']).to_string();
                values.insert(target, (content, Origin::SecretFile(PathBuf::from(path))));
            }
            Err(e) => problems.push(ConfigError::new(&var, format!("cannot read secret file {path}: {e}"))),
        }
    }
}

/// Reads a TOML file: top-level keys are shared settings, `[auth]` tables are one scope's.
fn read_config_file(path: &Path, problems: &mut Vec<ConfigError>) -> Vec<(String, String, PathBuf)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(ConfigError::file(path, e.to_string()));
            return Vec::new();
        }
    };
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            problems.push(ConfigError::file(path, e.to_string()));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (key, value) in table {
        let upper = key.to_ascii_uppercase();
        match value {
            // A section of an unknown scope becomes variables that no reader claims, which
            // each reader reports with the file they came from.
            toml::Value::Table(section) => {
                for (k, v) in section {
                    let var = format!("{PREFIX}{upper}_{}", k.to_ascii_uppercase());
                    push_value(path, var, v, &mut out, problems);
                }
            }
            v => push_value(path, format!("{PREFIX}{upper}"), v, &mut out, problems),
        }
    }
    out
}

fn push_value(
    path: &Path,
    var: String,
    value: toml::Value,
    out: &mut Vec<(String, String, PathBuf)>,
    problems: &mut Vec<ConfigError>,
) {
    let text = match value {
        toml::Value::String(s) => s,
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        _ => {
            problems.push(ConfigError::new(
                &var,
                format!("in {}: expected a string, number or boolean", path.display()),
            ));
            return;
        }
    };
    out.push((var, text, path.to_path_buf()));
}
