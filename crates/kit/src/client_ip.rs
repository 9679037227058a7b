//! The client's IP address: from `X-Forwarded-For` only when the peer is a trusted proxy.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::config::Setting;

/// The proxies whose `X-Forwarded-For` is believed. Empty by default: trust nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
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

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Setting for TrustedProxies {
    const EXPECTED: &'static str =
        "a comma-separated list of IP addresses or CIDR ranges, e.g. 10.0.0.0/8,192.168.1.4";

    fn parse_setting(s: &str) -> Option<Self> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.parse::<IpNet>().or_else(|_| p.parse::<IpAddr>().map(IpNet::from)).ok())
            .collect::<Option<Vec<_>>>()
            .map(Self)
    }
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
    fn a_garbled_header_falls_back_to_the_peer() {
        let trusted = TrustedProxies::parse_setting("10.0.0.0/8").expect("valid");
        assert_eq!(trusted.client_ip(ip("10.0.0.2"), &headers("not-an-ip")), ip("10.0.0.2"));
        assert!(TrustedProxies::parse_setting("10.0.0.0/33").is_none());
    }
}
