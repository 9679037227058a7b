//! What a container asks of the gateway: `slipway.*` labels, or nginx-proxy's `VIRTUAL_*`
//! variables for drop-in compatibility, turned into route specs.

use std::collections::HashMap;

use bollard::models::{ContainerInspectResponse, HealthStatusEnum};

use crate::routes::{HealthSpec, RouteSpec};

/// The labels a container may carry; any of the first three opts it in.
pub const HOST: &str = "slipway.host";
pub const PATH: &str = "slipway.path";
pub const PORT: &str = "slipway.port";
pub const HEALTH: &str = "slipway.health";
pub const ROUTE: &str = "slipway.route";
pub const STRIP_PREFIX: &str = "slipway.strip_prefix";
pub const PROTECTED: &str = "slipway.protected";
pub const RATE_LIMIT: &str = "slipway.rate_limit";
pub const ENABLE: &str = "slipway.enable";
pub const BALANCE: &str = "slipway.balance";
const COMPOSE_SERVICE: &str = "com.docker.compose.service";
const SWARM_SERVICE: &str = "com.docker.swarm.service.name";
const COMPOSE_PROJECT: &str = "com.docker.compose.project";
const STACK: &str = "com.docker.stack.namespace";

/// The compose project or Swarm stack a container belongs to, if any.
pub fn project(c: &ContainerInspectResponse) -> Option<String> {
    let labels = c.config.as_ref()?.labels.as_ref()?;
    labels.get(COMPOSE_PROJECT).or(labels.get(STACK)).cloned()
}

/// The routes a running container belongs to, or `None` if it did not opt in. An error says
/// which label is wrong.
pub fn specs(c: &ContainerInspectResponse, network: Option<&str>) -> Result<Option<Vec<RouteSpec>>, String> {
    let config = c.config.as_ref();
    let labels = config.and_then(|c| c.labels.clone()).unwrap_or_default();
    let env: HashMap<&str, &str> = config
        .and_then(|c| c.env.as_ref())
        .map(|e| e.iter().filter_map(|kv| kv.split_once('=')).collect())
        .unwrap_or_default();
    let label = |k: &str| labels.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let var = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let slipway = [HOST, PATH, PORT].iter().any(|k| label(k).is_some());
    let virtual_host = var("VIRTUAL_HOST").is_some();
    if label(ENABLE) == Some("false") || !(slipway || virtual_host) {
        return Ok(None);
    }
    let name = c.name.as_deref().unwrap_or("container").trim_start_matches('/');
    if !ready(c) {
        return Ok(Some(Vec::new()));
    }
    let route = label(ROUTE).or(label(COMPOSE_SERVICE)).or(label(SWARM_SERVICE)).unwrap_or(name).to_string();
    let port = match label(PORT).or(var("VIRTUAL_PORT")) {
        Some(p) => p.parse::<u16>().map_err(|_| format!("{name}: {PORT} {p:?} is not a port number"))?,
        None => only_exposed_port(c).unwrap_or(80),
    };
    let ip = address(c, network).ok_or_else(|| match network {
        Some(n) => format!("{name}: not attached to the network {n} (SLIPWAY_GATEWAY_DOCKER_NETWORK)"),
        None => format!("{name}: has no IP address"),
    })?;
    let path = label(PATH).or(var("VIRTUAL_PATH")).map(str::to_string);
    if path.as_deref().is_some_and(|p| !p.starts_with('/')) {
        return Err(format!("{name}: {PATH} must start with /"));
    }
    let health_default = if slipway { "/readyz" } else { "/" };
    let health =
        HealthSpec { path: label(HEALTH).unwrap_or(health_default).to_string(), ..HealthSpec::default() };
    let flag = |k: &str| label(k).is_some_and(|v| v == "true" || v == "1");
    let hosts: Vec<Option<String>> = match label(HOST).or(var("VIRTUAL_HOST")) {
        Some(list) => list
            .split(',')
            .map(|h| Some(h.trim().to_string()))
            .filter(|h| h.as_ref().is_some_and(|h| !h.is_empty()))
            .collect(),
        None => vec![None],
    };
    let many = hosts.len() > 1;
    Ok(Some(
        hosts
            .into_iter()
            .map(|host| RouteSpec {
                name: match (&host, many) {
                    (Some(h), true) => format!("{route}@{h}"),
                    _ => route.clone(),
                },
                host,
                path: path.clone(),
                strip_prefix: flag(STRIP_PREFIX),
                instances: vec![std::net::SocketAddr::new(ip, port).to_string()],
                health: health.clone(),
                protected: flag(PROTECTED),
                rate_limit: label(RATE_LIMIT).map(str::to_string),
                balance: label(BALANCE).map(str::to_string),
            })
            .collect(),
    ))
}

/// Running, with a Docker health check that has yet to pass (the instance is on its way).
pub fn starting(c: &ContainerInspectResponse) -> bool {
    let state = c.state.as_ref();
    let running = state.and_then(|s| s.running).unwrap_or(false);
    running
        && state.and_then(|s| s.health.as_ref()).and_then(|h| h.status) == Some(HealthStatusEnum::STARTING)
}

/// Running, and healthy if the container has a Docker health check of its own.
fn ready(c: &ContainerInspectResponse) -> bool {
    let state = c.state.as_ref();
    let running = state.and_then(|s| s.running).unwrap_or(false);
    let health = state.and_then(|s| s.health.as_ref()).and_then(|h| h.status);
    running
        && matches!(
            health,
            None | Some(HealthStatusEnum::HEALTHY | HealthStatusEnum::NONE | HealthStatusEnum::EMPTY)
        )
}

fn only_exposed_port(c: &ContainerInspectResponse) -> Option<u16> {
    let ports = c.config.as_ref()?.exposed_ports.as_ref()?;
    let tcp: Vec<u16> =
        ports.keys().filter_map(|p| p.strip_suffix("/tcp")).filter_map(|p| p.parse().ok()).collect();
    if let [only] = tcp[..] { Some(only) } else { None }
}

/// The container's address on `network`, or on its first network by name.
fn address(c: &ContainerInspectResponse, network: Option<&str>) -> Option<std::net::IpAddr> {
    let settings = c.network_settings.as_ref()?;
    let networks = settings.networks.as_ref();
    let ip = |s: Option<&String>| s.and_then(|ip| ip.parse().ok());
    if let Some(wanted) = network {
        return networks?
            .iter()
            .find(|(n, _)| n.as_str() == wanted)
            .and_then(|(_, e)| ip(e.ip_address.as_ref()));
    }
    let mut names: Vec<&String> = networks.map(|n| n.keys().collect()).unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .find_map(|n| ip(networks?.get(n)?.ip_address.as_ref()))
        .or_else(|| ip(settings.ip_address.as_ref()))
}

#[cfg(test)]
mod tests {
    use bollard::models::{ContainerConfig, ContainerState, EndpointSettings, Health, NetworkSettings};

    use super::*;

    fn container(
        labels: &[(&str, &str)],
        env: &[&str],
        health: Option<HealthStatusEnum>,
    ) -> ContainerInspectResponse {
        let network = EndpointSettings { ip_address: Some("172.18.0.5".into()), ..Default::default() };
        ContainerInspectResponse {
            name: Some("/app-auth-2".into()),
            config: Some(ContainerConfig {
                labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                env: Some(env.iter().map(|e| e.to_string()).collect()),
                ..Default::default()
            }),
            state: Some(ContainerState {
                running: Some(true),
                health: health.map(|s| Health { status: Some(s), ..Default::default() }),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                networks: Some([("app_default".to_string(), network)].into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn labels_make_a_route_named_after_the_compose_service() {
        let c = container(
            &[(PATH, "/api/auth"), (PORT, "8081"), (STRIP_PREFIX, "true"), (COMPOSE_SERVICE, "auth")],
            &[],
            None,
        );
        let specs = specs(&c, None).expect("valid").expect("opted in");
        assert_eq!(specs.len(), 1);
        let s = &specs[0];
        assert_eq!((s.name.as_str(), s.path.as_deref(), s.strip_prefix), ("auth", Some("/api/auth"), true));
        assert_eq!(s.instances, vec!["172.18.0.5:8081".to_string()]);
        assert_eq!(s.health.path, "/readyz");
    }

    #[test]
    fn nginx_proxy_variables_work_and_each_host_gets_a_route() {
        let c = container(&[], &["VIRTUAL_HOST=a.test, b.test", "VIRTUAL_PORT=3000"], None);
        let specs = specs(&c, None).expect("valid").expect("opted in");
        let names: Vec<_> = specs.iter().map(|s| (s.name.as_str(), s.host.as_deref())).collect();
        assert_eq!(names, vec![("app-auth-2@a.test", Some("a.test")), ("app-auth-2@b.test", Some("b.test"))]);
        assert!(specs.iter().all(|s| s.instances == ["172.18.0.5:3000"] && s.health.path == "/"));
    }

    #[test]
    fn containers_that_did_not_opt_in_or_are_not_healthy_yet_get_no_traffic() {
        assert_eq!(specs(&container(&[], &["PATH=/bin"], None), None), Ok(None));
        assert_eq!(specs(&container(&[(PORT, "80"), (ENABLE, "false")], &[], None), None), Ok(None));
        for status in [HealthStatusEnum::STARTING, HealthStatusEnum::UNHEALTHY] {
            let c = container(&[(PORT, "80")], &[], Some(status));
            assert_eq!(specs(&c, None), Ok(Some(Vec::new())), "{status}");
        }
        let healthy = container(&[(PORT, "80")], &[], Some(HealthStatusEnum::HEALTHY));
        assert_eq!(specs(&healthy, None).expect("valid").map(|s| s.len()), Some(1));
    }

    #[test]
    fn bad_labels_and_missing_networks_are_explained() {
        let bad_port = specs(&container(&[(PORT, "http")], &[], None), None).expect_err("bad port");
        assert!(bad_port.contains("slipway.port \"http\""), "{bad_port}");
        let elsewhere = specs(&container(&[(PORT, "80")], &[], None), Some("edge")).expect_err("no net");
        assert!(elsewhere.contains("not attached to the network edge"), "{elsewhere}");
    }
}
