//! The routing table: routes from a TOML file, matched by host (exact, `*.suffix`, or any)
//! and longest path prefix. Instance names are resolved to every address they have, so a
//! name like `tasks.auth` (Swarm) or a headless service lists all its instances.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use kit::config::{Limit, Rate, Setting, parse_duration};
use serde::Deserialize;

use crate::upstream::{Balance, Balancer, Instance};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default, rename = "route")]
    routes: Vec<RouteSpec>,
}

/// A route as a source describes it (the file, or Docker's labels), before it is checked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    pub name: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub strip_prefix: bool,
    /// `ip:port` or `name:port`; a name stands for every address it resolves to.
    pub instances: Vec<String>,
    #[serde(default)]
    pub health: HealthSpec,
    #[serde(default)]
    pub protected: bool,
    #[serde(default)]
    pub rate_limit: Option<String>,
    /// `least_outstanding` (the default: power of two choices) or `round_robin`.
    #[serde(default)]
    pub balance: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSpec {
    pub path: String,
    pub interval: String,
    pub timeout: String,
    pub healthy: u32,
    pub unhealthy: u32,
}

impl Default for HealthSpec {
    fn default() -> Self {
        Self { path: "/readyz".into(), interval: "2s".into(), timeout: "1s".into(), healthy: 1, unhealthy: 2 }
    }
}

/// How a route's instances are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy: u32,
    pub unhealthy: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Exact(String),
    Suffix(String),
    Any,
}

impl HostMatch {
    fn parse(host: Option<&str>) -> Self {
        match host.map(|h| h.trim().to_ascii_lowercase()) {
            None => Self::Any,
            Some(h) if h == "*" || h.is_empty() => Self::Any,
            Some(h) => match h.strip_prefix('*') {
                Some(suffix) => Self::Suffix(suffix.to_string()),
                None => Self::Exact(h),
            },
        }
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(h) => h == host,
            Self::Suffix(s) => host.ends_with(s.as_str()) && host.len() > s.len(),
            Self::Any => true,
        }
    }

    fn rank(&self) -> (u8, usize) {
        match self {
            Self::Exact(_) => (0, 0),
            Self::Suffix(s) => (1, usize::MAX - s.len()),
            Self::Any => (2, 0),
        }
    }
}

#[derive(Debug)]
pub struct Route {
    pub name: String,
    /// A hash of the name: the rate limiter's key for the route.
    pub key: u64,
    host: HostMatch,
    pub prefix: String,
    pub strip_prefix: bool,
    pub instances: Vec<Arc<Instance>>,
    pub health: Health,
    pub protected: bool,
    pub rate_limit: Option<Rate>,
    pub balancer: Balancer,
}

impl Route {
    /// The path to send upstream.
    pub fn upstream_path<'a>(&self, path: &'a str) -> std::borrow::Cow<'a, str> {
        if !self.strip_prefix || self.prefix == "/" {
            return path.into();
        }
        let rest = &path[self.prefix.len().min(path.len())..];
        if rest.starts_with('/') { rest.into() } else { format!("/{rest}").into() }
    }
}

/// Every route, most specific first.
#[derive(Debug, Default)]
pub struct Table {
    pub routes: Vec<Arc<Route>>,
}

/// Whether `path` is under `prefix`, segment by segment and ignoring ASCII case (`/API/x`
/// is under `/api`: an instance that ignores case must not be reached around a route).
fn prefix_matches(prefix: &str, path: &str) -> bool {
    let (prefix, path) = (prefix.as_bytes(), path.as_bytes());
    prefix == b"/"
        || (path.len() >= prefix.len()
            && path[..prefix.len()].eq_ignore_ascii_case(prefix)
            && (path.len() == prefix.len() || prefix.ends_with(b"/") || path[prefix.len()] == b'/'))
}

/// The routes a TOML routes file describes.
pub fn parse_file(text: &str) -> Result<Vec<RouteSpec>, String> {
    let file: File = toml::from_str(text).map_err(|e| format!("routes file: {e}"))?;
    Ok(file.routes)
}

/// Adds `extra` routes to `base`; an extra route named like a base route lends it its
/// instances (so a file can set the policy of a route whose instances Docker discovers).
pub fn merge(mut base: Vec<RouteSpec>, extra: Vec<RouteSpec>) -> Vec<RouteSpec> {
    for spec in extra {
        match base.iter_mut().find(|b| b.name == spec.name) {
            Some(b) => b.instances.extend(spec.instances),
            None => base.push(spec),
        }
    }
    base
}

impl Table {
    /// The route for a host (without port) and path: the most specific host, then the longest prefix.
    pub fn find(&self, host: &str, path: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|r| r.host.matches(host) && prefix_matches(&r.prefix, path))
    }

    /// The (route, address) pairs, to tell whether a reload changed anything.
    pub fn shape(&self) -> Vec<(String, Vec<SocketAddr>, String)> {
        self.routes
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    r.instances.iter().map(|i| i.addr).collect(),
                    format!(
                        "{:?}{}{:?}{:?}{}{:?}",
                        r.host, r.prefix, r.health, r.rate_limit, r.protected, r.balancer.balance
                    ),
                )
            })
            .collect()
    }

    /// Parses a routes file into a table (see [`Table::build`]).
    pub fn parse(text: &str, previous: &Table) -> Result<Table, String> {
        Table::build(parse_file(text)?, previous)
    }

    /// Checks and resolves route specs; instances already known (same route and address) are
    /// reused with their health and counters.
    pub fn build(specs: Vec<RouteSpec>, previous: &Table) -> Result<Table, String> {
        let known: HashMap<(&str, SocketAddr), &Arc<Instance>> = previous
            .routes
            .iter()
            .flat_map(|r| r.instances.iter().map(move |i| ((r.name.as_str(), i.addr), i)))
            .collect();
        let mut routes = Vec::new();
        for spec in specs {
            let route = &spec.name;
            let duration = |field: &str, text: &str| {
                parse_duration(text).map_err(|e| format!("route {route}: health.{field}: expected {e}"))
            };
            let health = Health {
                path: spec.health.path.clone(),
                interval: duration("interval", &spec.health.interval)?,
                timeout: duration("timeout", &spec.health.timeout)?,
                healthy: spec.health.healthy.max(1),
                unhealthy: spec.health.unhealthy.max(1),
            };
            let rate_limit = match &spec.rate_limit {
                None => None,
                Some(text) => {
                    Limit::parse_setting(text)
                        .ok_or_else(|| format!("route {route}: rate_limit: expected {}", Limit::EXPECTED))?
                        .0
                }
            };
            let mut instances = Vec::new();
            for name in &spec.instances {
                let addrs =
                    name.to_socket_addrs().map_err(|e| format!("route {route}: instance {name:?}: {e}"))?;
                for addr in addrs {
                    let instance = known
                        .get(&(spec.name.as_str(), addr))
                        .map_or_else(|| Instance::new(addr), |i| Arc::clone(i));
                    if !instances.iter().any(|i: &Arc<Instance>| i.addr == addr) {
                        instances.push(instance);
                    }
                }
            }
            let balance = match spec.balance.as_deref() {
                None | Some("least_outstanding") => Balance::LeastOutstanding,
                Some("round_robin") => Balance::RoundRobin,
                Some(other) => {
                    return Err(format!(
                        "route {route}: balance: expected least_outstanding or round_robin, not {other:?}"
                    ));
                }
            };
            let prefix = spec.path.unwrap_or_else(|| "/".into());
            if !prefix.starts_with('/') {
                return Err(format!("route {route}: path must start with /"));
            }
            routes.push(Arc::new(Route {
                key: {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    spec.name.hash(&mut h);
                    h.finish()
                },
                name: spec.name,
                host: HostMatch::parse(spec.host.as_deref()),
                prefix,
                strip_prefix: spec.strip_prefix,
                instances,
                health,
                protected: spec.protected,
                rate_limit,
                balancer: Balancer::new(balance),
            }));
        }
        routes.sort_by_key(|r| (r.host.rank(), usize::MAX - r.prefix.len()));
        Ok(Table { routes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Table {
        Table::parse(text, &Table::default()).expect("valid")
    }

    const ROUTES: &str = r#"
        [[route]]
        name = "web"
        instances = ["127.0.0.1:1"]
        [[route]]
        name = "auth"
        path = "/api/auth"
        strip_prefix = true
        instances = ["127.0.0.1:2"]
        [[route]]
        name = "admin"
        host = "admin.example.com"
        instances = ["127.0.0.1:3"]
        [[route]]
        name = "tenants"
        host = "*.example.com"
        path = "/api"
        instances = ["127.0.0.1:4"]
    "#;

    #[test]
    fn the_most_specific_host_then_the_longest_prefix_wins() {
        let t = table(ROUTES);
        let name = |host: &str, path: &str| t.find(host, path).map(|r| r.name.as_str());
        assert_eq!(name("localhost", "/"), Some("web"));
        assert_eq!(name("localhost", "/api/auth/login"), Some("auth"));
        assert_eq!(name("localhost", "/api/authx"), Some("web"), "prefixes match whole segments");
        assert_eq!(name("localhost", "/API/Auth/x"), Some("auth"), "whatever the case");
        assert_eq!(
            name("admin.example.com", "/api/auth"),
            Some("admin"),
            "an exact host beats any path on another host"
        );
        assert_eq!(name("acme.example.com", "/api/things"), Some("tenants"));
        assert_eq!(name("acme.example.com", "/other"), Some("web"));
        assert_eq!(name("example.com", "/api"), Some("web"), "*.example.com needs a subdomain");
    }

    #[test]
    fn strip_prefix_keeps_a_leading_slash_and_bad_files_are_explained() {
        let t = table(ROUTES);
        let auth = t.find("x", "/api/auth/login").expect("auth");
        assert_eq!(auth.upstream_path("/api/auth/login"), "/login");
        assert_eq!(auth.upstream_path("/api/auth"), "/");
        let err = Table::parse(
            "[[route]]\nname = \"x\"\ninstances = [\"127.0.0.1:1\"]\nrate_limit = \"lots\"",
            &Table::default(),
        );
        assert!(err.expect_err("bad rate").contains("route x: rate_limit"));
        let err = Table::parse("[[route]]\nname = \"x\"\ninstance = []", &Table::default());
        assert!(err.expect_err("typo").contains("unknown field"));
    }

    #[test]
    fn a_reload_keeps_the_health_of_instances_it_already_knew() {
        let first = table(ROUTES);
        first.routes.iter().for_each(|r| {
            r.instances.iter().for_each(|i| i.healthy.store(true, std::sync::atomic::Ordering::Relaxed))
        });
        let second = Table::parse(ROUTES, &first).expect("valid");
        assert!(second.routes.iter().all(|r| r.instances.iter().all(|i| i.available())));
    }
}
