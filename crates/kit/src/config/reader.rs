//! Reads typed settings out of [`Sources`], collecting every problem before failing.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;

use super::{Environment, Origin, PREFIX, SHARED_KEYS, Sources, parse_duration};

/// One problem with one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable to fix (or the file that could not be read).
    pub var: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// A problem with variable `var`.
    pub fn new(var: &str, message: impl Into<String>) -> Self {
        Self { var: var.to_string(), message: message.into() }
    }

    pub(super) fn file(path: &Path, message: impl Into<String>) -> Self {
        Self { var: path.display().to_string(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.var, self.message)
    }
}

/// Every problem found while loading a configuration, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(f, "{n} configuration problem{}:", if n == 1 { "" } else { "s" })?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

/// A type a setting can be parsed into, with words for what a valid value looks like.
pub trait Setting: Sized {
    /// What a valid value looks like, for the error message ("a duration").
    const EXPECTED: &'static str;
    /// The value `s` stands for, or `None` when it is not one.
    fn parse_setting(s: &str) -> Option<Self>;
}

macro_rules! from_str_setting {
    ($($t:ty => $expected:literal),* $(,)?) => {$(
        impl Setting for $t {
            const EXPECTED: &'static str = $expected;
            fn parse_setting(s: &str) -> Option<Self> { s.trim().parse().ok() }
        }
    )*};
}

from_str_setting! {
    u16 => "a whole number from 0 to 65535",
    u32 => "a whole number",
    u64 => "a whole number",
    usize => "a whole number",
    IpAddr => "an IP address such as 127.0.0.1 or 0.0.0.0",
    String => "text",
}

impl Setting for bool {
    const EXPECTED: &'static str = "true or false";
    fn parse_setting(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => None,
        }
    }
}

impl Setting for Duration {
    const EXPECTED: &'static str = "a duration such as 250ms, 30s, 5m, 1h or 30d";
    fn parse_setting(s: &str) -> Option<Self> {
        parse_duration(s).ok()
    }
}

impl Setting for Environment {
    const EXPECTED: &'static str = "one of dev, test, staging, prod";
    fn parse_setting(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// Reads one scope's settings; call [`Reader::finish`] at the end to learn every problem.
#[derive(Debug)]
pub struct Reader<'a> {
    sources: &'a Sources,
    scope: String,
    used: BTreeSet<String>,
    errors: Vec<ConfigError>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(sources: &'a Sources, scope: &str) -> Self {
        Self { sources, scope: scope.to_ascii_uppercase(), used: BTreeSet::new(), errors: Vec::new() }
    }

    /// The environment the sources are for.
    pub fn environment(&self) -> Environment {
        self.sources.environment
    }

    /// The variable a key is set through for this scope, e.g. `SLIPWAY_AUTH_PORT`.
    pub fn var_name(&self, key: &str) -> String {
        format!("{PREFIX}{}_{key}", self.scope)
    }

    /// Finds a key: the scoped variable first, then (for shared keys) the unscoped one.
    fn lookup(&mut self, key: &str) -> Option<(String, &'a str, &'a Origin)> {
        let scoped = self.var_name(key);
        self.used.insert(scoped.clone());
        let mut candidates = vec![scoped];
        if SHARED_KEYS.contains(&key) {
            candidates.push(format!("{PREFIX}{key}"));
        }
        candidates.into_iter().find_map(|var| {
            let sources: &'a Sources = self.sources;
            sources.values.get(&var).map(|(v, o)| (var, v.as_str(), o))
        })
    }

    /// A setting, or `default` when unset. A bad value is recorded and `default` returned.
    pub fn get<T: Setting>(&mut self, key: &str, default: T) -> T {
        self.optional(key).unwrap_or(default)
    }

    /// A setting that may be absent.
    pub fn optional<T: Setting>(&mut self, key: &str) -> Option<T> {
        let (var, raw, origin) = self.lookup(key)?;
        match T::parse_setting(raw) {
            Some(v) => Some(v),
            None => {
                let message = format!("expected {}, got {raw:?} ({origin})", T::EXPECTED);
                self.errors.push(ConfigError::new(&var, message));
                None
            }
        }
    }

    /// A setting that must be given.
    pub fn required<T: Setting>(&mut self, key: &str) -> Option<T> {
        let value = self.optional(key);
        if value.is_none() && self.lookup(key).is_none() {
            let message = format!("required: expected {}", T::EXPECTED);
            self.errors.push(ConfigError::new(&self.var_name(key), message));
        }
        value
    }

    /// A secret. In dev and test an unset secret takes `dev_default`; in staging and prod it
    /// must be set, and neither the dev default nor an example value (`CHANGE-ME`) is accepted.
    /// The value never appears in an error.
    pub fn secret(&mut self, key: &str, dev_default: &str) -> SecretString {
        let production = self.environment().is_production_like();
        let found = self.lookup(key).map(|(var, raw, origin)| (var, raw.to_string(), origin.clone()));
        let var = self.var_name(key);
        let refuse = |why: String| ConfigError::new(&var, why);
        match found {
            None if production => {
                let why = format!(
                    "required in {}: set it, or set {var}_FILE to a file holding it",
                    self.environment()
                );
                self.errors.push(refuse(why));
            }
            None => return SecretString::from(dev_default.to_string()),
            Some((var, raw, origin)) if production => {
                let why = if raw.trim().is_empty() {
                    Some("is empty")
                } else if raw == dev_default {
                    Some("is the development default")
                } else if raw.contains("CHANGE-ME") {
                    Some("is the example value from secrets.env.example")
                } else {
                    None
                };
                if let Some(why) = why {
                    let message = format!(
                        "{why} ({origin}); {} refuses it: generate a real one, e.g. `openssl rand -base64 32`",
                        self.environment()
                    );
                    self.errors.push(ConfigError::new(&var, message));
                }
                return SecretString::from(raw);
            }
            Some((_, raw, _)) => return SecretString::from(raw),
        }
        SecretString::from(String::new())
    }

    /// Records a problem found by the caller (a cross-field check, say).
    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        let var = self.var_name(key);
        self.errors.push(ConfigError::new(&var, message));
    }

    /// Ends reading part of a scope's settings (the database's, for `slipway migrate`): returns
    /// bad values and unreadable files, and leaves unclaimed variables to the full load.
    pub fn finish_part(self) -> Result<(), ConfigErrors> {
        let mut errors = self.sources.problems.clone();
        errors.extend(self.errors);
        if errors.is_empty() { Ok(()) } else { Err(ConfigErrors(errors)) }
    }

    /// Ends reading: returns every problem — bad values, unreadable files, and variables of
    /// this scope (or unscoped ones) that no setting claims.
    pub fn finish(self) -> Result<(), ConfigErrors> {
        let mut errors = self.sources.problems.clone();
        errors.extend(self.errors);
        let own = format!("{PREFIX}{}_", self.scope);
        for var in self.sources.values.keys() {
            if self.used.contains(var) {
                continue;
            }
            let rest = &var[PREFIX.len()..];
            let unknown = if var.starts_with(&own) {
                true
            } else {
                let other_scope = self.sources.scopes.iter().any(|s| rest.starts_with(&format!("{s}_")));
                !other_scope && !SHARED_KEYS.contains(&rest)
            };
            if unknown {
                let mut message = "unknown setting".to_string();
                if let Some(near) = nearest(var, self.used.iter().map(String::as_str)) {
                    message.push_str(&format!(" (did you mean {near}?)"));
                }
                if let Some((_, origin @ (Origin::ConfigFile(_) | Origin::DotEnv(_)))) =
                    self.sources.values.get(var)
                {
                    message.push_str(&format!(", {origin}"));
                }
                errors.push(ConfigError::new(var, message));
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(ConfigErrors(errors)) }
    }
}

/// The known name closest to a misspelt one, if it is close enough to be a typo.
fn nearest<'b>(var: &str, known: impl Iterator<Item = &'b str>) -> Option<&'b str> {
    known.map(|k| (edit_distance(var, k), k)).filter(|(d, _)| *d <= 3).min_by_key(|(d, _)| *d).map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(cur).min(row[j]) };
            prev = cur;
        }
    }
    row[b.len()]
}
