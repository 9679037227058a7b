//! The client's IP address: from `X-Forwarded-For` only when the peer is a trusted proxy.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::config::Setting;

/// The proxies whose `X-Forwarded-For` is believed. Empty by default: trust nobody.
///
/// Each entry is an address, a CIDR range, or a host name. Names are for containers, whose
/// addresses change: `gateway,web` trusts exactly the addresses those names resolve to (and
/// `tasks.<name>`'s, Swarm's per-task records), looked up again every few seconds by
/// [`TrustedProxies::keep_resolved`] so that a replaced or scaled container is trusted in
/// turn, and nothing else on the network is.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    names: Vec<String>,
    resolved: Arc<RwLock<Vec<IpAddr>>>,
    resolving: Arc<AtomicBool>,
}

impl PartialEq for TrustedProxies {
    fn eq(&self, other: &Self) -> bool {
        self.nets == other.nets && self.names == other.names
    }
}

impl Eq for TrustedProxies {}

/// How often names are looked up again.
const RESOLVE_EVERY: Duration = Duration::from_secs(2);

impl TrustedProxies {
    /// Trusts the peers in `nets` (addresses are /32 or /128 networks).
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self { nets, ..Self::default() }
    }

    /// Whether `ip` is a trusted proxy: in one of the networks, or one of the names' last
    /// resolved addresses.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(&ip))
            || (!self.names.is_empty() && self.resolved.read().is_ok_and(|r| r.contains(&ip)))
    }

    /// Looks the names up once now, then keeps looking them up in the background while any
    /// clone of this value lives. Idempotent; a no-op without names. Needs a Tokio runtime.
    pub async fn keep_resolved(&self) {
        if self.names.is_empty() || self.resolving.swap(true, Ordering::AcqRel) {
            return;
        }
        resolve(&self.names, &self.resolved).await;
        let names = self.names.clone();
        let resolved = Arc::downgrade(&self.resolved);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RESOLVE_EVERY).await;
                let Some(resolved) = resolved.upgrade() else { return };
                resolve(&names, &resolved).await;
            }
        });
    }

    /// The client address: the peer itself, unless the peer is trusted; then the right-most
    /// `X-Forwarded-For` hop that is not a trusted proxy (hops further left can be forged).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|hop| hop.trim().parse::<IpAddr>().map(canonical))
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            client = hop;
            if !self.contains(hop) {
                break;
            }
        }
        client
    }
}

/// The address a rate limit counts a client under: an IPv4 address itself, an IPv6 address's
/// /64 network (one subscriber usually holds a whole /64, so per-/128 limits are no limit).
pub fn bucket(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

/// Looks up every name (and its Swarm `tasks.` form) and replaces the resolved set. A round in
/// which nothing resolves keeps the previous set, so a DNS hiccup does not drop trust.
async fn resolve(names: &[String], resolved: &RwLock<Vec<IpAddr>>) {
    let mut found = Vec::new();
    for name in names {
        for host in [name.clone(), format!("tasks.{name}")] {
            if let Ok(addrs) = tokio::net::lookup_host((host.as_str(), 0)).await {
                found.extend(addrs.map(|a| canonical(a.ip())));
            }
        }
    }
    found.sort();
    found.dedup();
    if found.is_empty() {
        tracing::debug!(?names, "no trusted proxy name resolved; keeping the previous addresses");
        return;
    }
    if let Ok(mut current) = resolved.write()
        && *current != found
    {
        tracing::info!(?names, addresses = ?found, "trusted proxies resolved");
        *current = found;
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Setting for TrustedProxies {
    const EXPECTED: &'static str = "a comma-separated list of IP addresses, CIDR ranges or host names, \
         e.g. 192.168.1.4,10.1.0.0/16 or gateway,web";

    fn parse_setting(s: &str) -> Option<Self> {
        let mut trusted = Self::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Ok(net) = part.parse::<IpNet>().or_else(|_| part.parse::<IpAddr>().map(IpNet::from)) {
                trusted.nets.push(net);
            } else if is_host_name(part) {
                trusted.names.push(part.to_ascii_lowercase());
            } else {
                return None;
            }
        }
        Some(trusted)
    }
}

/// A DNS name: dot-separated labels of letters, digits and hyphens, not all digits (so a
/// mistyped address such as `10.0.0.300` is an error, not a name).
fn is_host_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && !s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Extractor: the client IP, by the [`TrustedProxies`] found in the router's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl<S> FromRequestParts<S> for ClientIp
where
    TrustedProxies: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |ConnectInfo(addr)| addr.ip());
        Ok(Self(TrustedProxies::from_ref(state).client_ip(peer, &parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().expect("header"));
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted = TrustedProxies::parse_setting("10.0.0.0/8").expect("valid");
        assert_eq!(trusted.client_ip(ip("203.0.113.9"), &headers("1.2.3.4")), ip("203.0.113.9"));
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = TrustedProxies::parse_setting("10.0.0.0/8, 192.168.1.4").expect("valid");
        let forged_then_real = headers("6.6.6.6, 198.51.100.7, 10.1.2.3");
        assert_eq!(trusted.client_ip(ip("192.168.1.4"), &forged_then_real), ip("198.51.100.7"));
        assert_eq!(trusted.client_ip(ip("10.0.0.2"), &HeaderMap::new()), ip("10.0.0.2"));
        assert_eq!(trusted.client_ip(ip("::ffff:10.0.0.2"), &headers("198.51.100.7")), ip("198.51.100.7"));
    }

    #[test]
    fn limits_count_ipv6_clients_per_64_and_ipv4_clients_per_address() {
        assert_eq!(bucket(ip("2001:db8:1:2:aaaa::1")), bucket(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(bucket(ip("2001:db8:1:2::1")), bucket(ip("2001:db8:1:3::1")));
        assert_eq!(bucket(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(bucket(ip("198.51.100.7")), ip("198.51.100.7"));
        assert_eq!(bucket(ip("::ffff:198.51.100.7")), ip("198.51.100.7"));
    }

    #[test]
    fn a_garbled_header_falls_back_to_the_peer() {
        let trusted = TrustedProxies::parse_setting("10.0.0.0/8").expect("valid");
        assert_eq!(trusted.client_ip(ip("10.0.0.2"), &headers("not-an-ip")), ip("10.0.0.2"));
        assert!(TrustedProxies::parse_setting("10.0.0.0/33").is_none());
        assert!(TrustedProxies::parse_setting("10.0.0.300").is_none());
        assert!(TrustedProxies::parse_setting("gate way").is_none());
    }

    #[tokio::test]
    async fn a_name_trusts_the_addresses_it_resolves_to_and_nothing_else() {
        let trusted = TrustedProxies::parse_setting("localhost, 192.0.2.1").expect("valid");
        assert!(!trusted.contains(ip("127.0.0.1")), "not before the name is resolved");
        trusted.keep_resolved().await;
        assert!(trusted.contains(ip("127.0.0.1")), "localhost resolves to 127.0.0.1");
        assert!(trusted.contains(ip("192.0.2.1")));
        assert!(!trusted.contains(ip("127.0.0.2")), "a neighbour on the network is not trusted");
        let forwarded = headers("198.51.100.7");
        assert_eq!(trusted.clone().client_ip(ip("127.0.0.1"), &forwarded), ip("198.51.100.7"));
    }
}
