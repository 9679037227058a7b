//! Header rewriting on the way to an instance: the client's hop-by-hop headers out first (so
//! `Connection:` can name only the client's own headers, never one the gateway sets), then the
//! gateway's own (`Host`, `X-Forwarded-*`, `X-Request-Id`, set as the head is written), and the
//! origin-form target.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::Uri;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::uri::PathAndQuery;
use hyper::upgrade::OnUpgrade;
use kit::client_ip::TrustedProxies;

use super::refusal::Refusal;
use super::{X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO, X_REQUEST_ID, X_USER_ID, target, upgrade};
use crate::routes::Route;
use crate::upstream::HOP_BY_HOP;

/// Whether a header is hop-by-hop whatever `Connection` says.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// Removes hop-by-hop headers, including those the Connection header names: one pass over
/// the names finds them, and only those present are removed.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok());
    let doomed: Vec<HeaderName> = headers.keys().filter(|n| is_hop_by_hop(n)).cloned().chain(named).collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// What the client sent that the gateway passes on its own terms: the site it named and the
/// protocol it asked to upgrade to.
#[derive(Debug)]
pub struct Kept {
    pub host: Option<HeaderValue>,
    pub upgrade: Option<(HeaderValue, OnUpgrade)>,
}

/// The client's headers made safe: its hop-by-hop, underscored and `X-User-Id` headers gone.
/// `host`: its `Host` field.
pub fn clean(parts: &mut Parts, host: Option<HeaderValue>) -> Kept {
    let upgrade = upgrade::requested(parts);
    strip_hop_by_hop(&mut parts.headers);
    target::drop_underscored(&mut parts.headers);
    parts.headers.remove(&X_USER_ID);
    // An HTTP/2 client names the site in the URI, not in a Host header.
    let host = host.or_else(|| parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()));
    Kept { host, upgrade }
}

/// The client end of a connection: its address, and its IP as `X-Forwarded-For` gives it,
/// written once per connection rather than once per request.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    forwarded_for: HeaderValue,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, forwarded_for: ip_value(addr.ip()) }
    }
}

/// Where the request came from and how: what the `X-Forwarded-*` headers say.
#[derive(Debug, Clone, Copy)]
pub struct Hop<'a> {
    pub peer: &'a Peer,
    pub https: bool,
    pub trusted: &'a TrustedProxies,
    pub rid: &'a HeaderValue,
}

/// The fields the gateway sets on a request for its instance, each in place of any field of
/// that name the client sent: `Host`, `X-Forwarded-For` (a trusted proxy's list extended),
/// `-Proto` (a trusted proxy's kept), `-Host` and `X-Request-Id`. They are written out with the
/// request's head ([`crate::upstream::Set`]), not inserted into its map: five hashed
/// insertions fewer per request.
///
/// The connection's and the request's values are borrowed, not cloned (each clone of a shared
/// value is a reference count up and down again).
#[derive(Debug)]
pub struct Forwarded<'a> {
    host: Option<HeaderValue>,
    forwarded_for: Option<Cow<'a, HeaderValue>>,
    proto: Option<HeaderValue>,
    rid: &'a HeaderValue,
}

impl<'a> Forwarded<'a> {
    /// The fields for a request with these headers (the client's, cleaned), from `host` (the
    /// site it named) and `hop`.
    pub fn new(headers: &HeaderMap, host: Option<HeaderValue>, hop: Hop<'a>) -> Self {
        let ip = hop.peer.addr.ip();
        let trusted = hop.trusted.contains(ip);
        // Only a trusted proxy's list is extended: an untrusted client's is not even looked up.
        let prior = if trusted { headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) } else { None };
        let forwarded_for = match prior {
            Some(prior) => HeaderValue::from_str(&format!("{prior}, {ip}")).ok().map(Cow::Owned),
            None => Some(Cow::Borrowed(&hop.peer.forwarded_for)),
        };
        let proto = (!trusted || !headers.contains_key(&X_FORWARDED_PROTO))
            .then(|| HeaderValue::from_static(if hop.https { "https" } else { "http" }));
        Self { host, forwarded_for, proto, rid: hop.rid }
    }

    /// The fields as the instance's request head takes them: `Host` first; a `None` leaves the
    /// client's field of that name as it was.
    pub fn fields(&self) -> [(&HeaderName, Option<&HeaderValue>); 5] {
        [
            (&header::HOST, self.host.as_ref()),
            (&X_FORWARDED_FOR, self.forwarded_for.as_deref()),
            (&X_FORWARDED_PROTO, self.proto.as_ref()),
            (&X_FORWARDED_HOST, self.host.as_ref()),
            (&X_REQUEST_ID, Some(self.rid)),
        ]
    }
}

/// An address as a header value; an IPv4 one written digit by digit (this runs for every
/// request, and `Display` costs more than the rest of the header work).
fn ip_value(ip: IpAddr) -> HeaderValue {
    let IpAddr::V4(v4) = ip else {
        return HeaderValue::from_str(&ip.to_string()).unwrap_or_else(|_| HeaderValue::from_static("-"));
    };
    let mut out = [0_u8; 15];
    let mut len = 0;
    for (n, octet) in v4.octets().into_iter().enumerate() {
        if n > 0 {
            out[len] = b'.';
            len += 1;
        }
        let digits = [octet / 100, octet / 10 % 10, octet % 10];
        let skip = if octet >= 100 {
            0
        } else if octet >= 10 {
            1
        } else {
            2
        };
        for d in &digits[skip..] {
            out[len] = b'0' + d;
            len += 1;
        }
    }
    HeaderValue::from_bytes(&out[..len]).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// The origin-form target (`/path?query`) the instance gets: the normalised path, less the
/// route's prefix when it strips it. The Host header says which site.
pub fn upstream_uri(route: &Route, uri: &Uri, normalized: Option<&str>) -> Result<Uri, Refusal> {
    let path = route.upstream_path(normalized.unwrap_or(uri.path()));
    let path_and_query = if normalized.is_none() && path.len() == uri.path().len() {
        uri.path_and_query().cloned()
    } else {
        let pq = match uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.into_owned(),
        };
        PathAndQuery::from_maybe_shared(Bytes::from(pq.into_bytes())).ok()
    };
    let mut target = http::uri::Parts::default();
    target.path_and_query = path_and_query.or(Some(PathAndQuery::from_static("/")));
    Uri::from_parts(target).map_err(|_| Refusal::BadTarget)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::encode_head;

    /// The head the instance gets for a GET with these client headers, from `peer`, with
    /// 10.0.0.0/8 trusted.
    fn upstream_head(client: &[(&str, &str)], peer: [u8; 4]) -> String {
        let mut headers = HeaderMap::new();
        for (name, value) in client {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        let trusted = TrustedProxies::new(vec!["10.0.0.0/8".parse().expect("net")]);
        let rid = HeaderValue::from_static("rid-1");
        let peer = Peer::new(SocketAddr::from((peer, 9)));
        let hop = Hop { peer: &peer, https: false, trusted: &trusted, rid: &rid };
        let forwarded = Forwarded::new(&headers, headers.get(header::HOST).cloned(), hop);
        let (head, _) =
            encode_head(&http::Method::GET, &Uri::from_static("/a"), &headers, &forwarded.fields(), None);
        String::from_utf8(head).expect("text")
    }

    #[test]
    fn an_untrusted_client_s_forwarding_fields_are_replaced_and_host_comes_first() {
        let head = upstream_head(
            &[("x-a", "1"), ("host", "shop"), ("x-forwarded-for", "6.6.6.6"), ("x-forwarded-proto", "https")],
            [192, 0, 2, 7],
        );
        assert!(head.starts_with("GET /a HTTP/1.1\r\nhost: shop\r\n"), "{head}");
        for line in [
            "x-forwarded-for: 192.0.2.7",
            "x-forwarded-proto: http",
            "x-forwarded-host: shop",
            "x-request-id: rid-1",
            "x-a: 1",
        ] {
            assert_eq!(head.matches(&format!("\r\n{line}\r\n")).count(), 1, "{line} once in {head}");
        }
        assert!(!head.contains("6.6.6.6") && !head.contains("https"), "{head}");
    }

    #[test]
    fn a_trusted_proxy_s_list_is_extended_and_its_protocol_kept() {
        let head =
            upstream_head(&[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-proto", "https")], [10, 1, 2, 3]);
        assert!(head.contains("\r\nx-forwarded-for: 6.6.6.6, 10.1.2.3\r\n"), "{head}");
        assert_eq!(head.matches("x-forwarded-proto").count(), 1, "{head}");
        assert!(head.contains("\r\nx-forwarded-proto: https\r\n") && !head.contains("host"), "{head}");
    }
}
