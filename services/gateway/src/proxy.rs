//! The proxy itself: route, limit, authenticate, pick an instance, forward, retry what is safe
//! to retry, and log one access line per request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use kit::client_ip::TrustedProxies;

mod admission;
mod capped;
mod forward;
mod headers;
mod refusal;
mod retry_budget;
mod target;
mod upgrade;

use crate::access_log::{AccessLog, Entry};
use crate::edge_auth::EdgeAuth;
use crate::limiter::Limiter;
use crate::routes::{Route, Table};
use crate::upstream::Passed;

use admission::Admitted;
pub use headers::Peer;
use headers::{Forwarded, Hop};
use refusal::Refusal;
pub use retry_budget::RetryBudget;

pub use crate::body::{Body, empty};

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub by_class: [AtomicU64; 5],
    pub unknown_host: AtomicU64,
    pub no_healthy_instance: AtomicU64,
    pub rate_limited: AtomicU64,
    pub unauthorized: AtomicU64,
    pub retries: AtomicU64,
    pub reload_failures: AtomicU64,
}

#[derive(Debug)]
pub struct Proxy {
    pub table: ArcSwap<Table>,
    pub limiter: Limiter,
    pub edge: EdgeAuth,
    pub trusted: TrustedProxies,
    pub metrics: Metrics,
    pub upstream_timeout: Duration,
    pub access: AccessLog,
    /// Largest request body accepted, in bytes (0: no limit).
    pub body_limit: usize,
    pub retry_budget: RetryBudget,
    /// With TLS on: plain-HTTP requests are redirected to HTTPS on this public port.
    pub https_redirect: Option<u16>,
    /// With TLS on: `Strict-Transport-Security` on every HTTPS answer.
    pub hsts: Option<HeaderValue>,
    /// A starting gateway's warm-up (see [`crate::warm`]).
    pub warm: crate::warm::Warm,
    /// Set once the gateway stops: every HTTP/1 answer is then its connection's last.
    pub draining: AtomicBool,
}

const MAX_ATTEMPTS: usize = 4;
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_USER_ID: HeaderName = HeaderName::from_static("x-user-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The request's host, from its `Host` field or else its target, lowercased, without its
/// port (IPv6 literals keep their brackets).
fn host_of<'a>(field: Option<&'a HeaderValue>, uri: &'a http::Uri) -> std::borrow::Cow<'a, str> {
    let raw = field.and_then(|h| h.to_str().ok()).or_else(|| uri.host()).unwrap_or("");
    let host = if raw.starts_with('[') {
        raw.split_inclusive(']').next().unwrap_or(raw)
    } else {
        // A byte scan: the host is short, and `split(':')` costs a searcher per request.
        raw.bytes().position(|b| b == b':').map_or(raw, |colon| &raw[..colon])
    };
    // `example.com.` is `example.com` (a fully qualified name).
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) { host.to_ascii_lowercase().into() } else { host.into() }
}

/// The request id as a header value: the client's if acceptable (the rule every service
/// applies), else a new one ([`new_request_id`]).
fn request_id(headers: &HeaderMap) -> HeaderValue {
    match headers.get(&X_REQUEST_ID).filter(|v| kit::request_id::acceptable(v)) {
        Some(id) => id.clone(),
        None => new_request_id(),
    }
}

/// A new UUIDv7: the time in milliseconds and 74 random bits from the thread's generator
/// (RFC 9562's layout without its optional counter: ids of one millisecond are unordered
/// among themselves, as request ids may be), written without an intermediate string into
/// one shared allocation. `Uuid::now_v7` orders them through a context every thread locks.
fn new_request_id() -> HeaderValue {
    use rand::Rng as _;
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let random: [u8; 10] = rand::thread_rng().r#gen();
    let id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
    let mut text = [0_u8; uuid::fmt::Hyphenated::LENGTH];
    id.hyphenated().encode_lower(&mut text);
    HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(text))
        .unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// The answer to a request, as a server writes it: the response, whose map holds the other
/// fields the gateway sets (they take precedence over an instance's of the same name); an
/// instance's fields as they came ([`Passed`]); and the request id, which every answer carries
/// in `X-Request-Id` in place of any the instance sent.
#[derive(Debug)]
pub struct Answer {
    pub response: Response<Body>,
    pub passed: Option<Passed>,
    pub request_id: HeaderValue,
}

/// A request being forwarded: its id as text (for a refusal's body) and when it came.
#[derive(Debug, Clone, Copy)]
struct Call<'a> {
    id: &'a str,
    started: Instant,
}

/// What the request path comes to: the answer, an instance's fields apart from its map (see
/// [`Passed`]), the route and the instance.
type Routed = (Response<Body>, Option<Passed>, Option<Arc<Route>>, Option<SocketAddr>);

/// 308 to the same host and target over HTTPS (308 keeps the method and body).
fn redirect_to_https(req: &Request<Body>, port: u16, id: &str) -> Response<Body> {
    let host = host_of(req.headers().get(header::HOST), req.uri());
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let location = if port == 443 {
        format!("https://{host}{target}")
    } else {
        format!("https://{host}:{port}{target}")
    };
    match HeaderValue::from_str(&location) {
        Ok(location) if !host.is_empty() => {
            let mut res = Response::new(empty());
            *res.status_mut() = StatusCode::PERMANENT_REDIRECT;
            res.headers_mut().insert(header::LOCATION, location);
            res
        }
        _ => Refusal::NoHost.response(id),
    }
}

impl Proxy {
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Body>,
        peer: Peer,
        https: bool,
    ) -> Result<Response<Body>, Infallible> {
        let Answer { mut response, passed, request_id } = self.answer(req, &peer, https).await;
        response.headers_mut().insert(X_REQUEST_ID.clone(), request_id);
        if let Some(passed) = passed {
            passed.append_to(response.headers_mut());
        }
        Ok(response)
    }

    /// The answer to `req`, with an instance's fields and the request id apart from its header
    /// map: for a server that writes them as they came. [`Proxy::handle`] puts them in the map.
    pub async fn answer(self: Arc<Self>, req: Request<Body>, peer: &Peer, https: bool) -> Answer {
        let started = Instant::now();
        let http1 = req.version() <= http::Version::HTTP_11;
        let rid = request_id(req.headers());
        // Its text, read once: an id that passed `acceptable` or that the gateway made is
        // ASCII, and `from_utf8` checks it a word at a time (`to_str` goes byte by byte).
        let id = std::str::from_utf8(rid.as_bytes()).unwrap_or("-");
        let method = req.method().clone();
        let uri = req.uri().clone();
        let (mut response, passed, route, instance) = match self.https_redirect {
            Some(port) if !https => (redirect_to_https(&req, port, id), None, None, None),
            _ => self.route(req, peer, https, &rid, Call { id, started }).await,
        };
        if https && let Some(hsts) = &self.hsts {
            response.headers_mut().insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
        let status = response.status().as_u16();
        self.metrics.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = self.metrics.by_class.get(usize::from(status / 100).saturating_sub(1)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.access.record(&Entry {
            request_id: id,
            method: method.as_str(),
            path: uri.path(),
            route: route.as_deref().map(|r| r.name.as_str()),
            instance,
            status,
            elapsed: started.elapsed(),
        });
        if http1 && self.draining.load(Ordering::Relaxed) {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        Answer { response, passed, request_id: rid }
    }

    /// Admission, header rewriting, forwarding: the request path, one concern per module.
    /// `call.started`: when the request came, the one clock reading its admission and first
    /// attempt use.
    async fn route(
        &self,
        req: Request<Body>,
        peer: &Peer,
        https: bool,
        rid: &HeaderValue,
        call: Call<'_>,
    ) -> Routed {
        let Call { id, started } = call;
        let Admitted { route, normalized, host } = match self.admit(&req, peer.addr, started) {
            Ok(admitted) => admitted,
            Err((refusal, route)) => return self.refused(refusal, route, None, id),
        };
        let (mut parts, body) = req.into_parts();
        let mut kept = headers::clean(&mut parts, host);
        if route.protected
            && let Err(refusal) = self.authenticate(&mut parts.headers).await
        {
            return self.refused(refusal, Some(route), None, id);
        }
        // The upstream timeout does not count the wait for a token's key.
        let started = if route.protected { Instant::now() } else { started };
        if let Some((protocol, _)) = &kept.upgrade {
            upgrade::ask(&mut parts.headers, protocol.clone());
        }
        let hop = Hop { peer, https, trusted: &self.trusted, rid };
        let forwarded = Forwarded::new(&parts.headers, kept.host.take(), hop);
        let uri = match headers::upstream_uri(&route, &parts.uri, normalized.as_deref()) {
            Ok(uri) => uri,
            Err(refusal) => return self.refused(refusal, Some(route), None, id),
        };
        let req = Request::from_parts(parts, body);
        self.forward(route, req, uri, kept, &forwarded.fields(), Call { id, started }).await
    }

    /// Counts a refusal and answers it.
    fn refused(
        &self,
        refusal: Refusal,
        route: Option<Arc<Route>>,
        instance: Option<SocketAddr>,
        id: &str,
    ) -> Routed {
        refusal.count(&self.metrics);
        (refusal.response(id), None, route, instance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_request_id_is_a_uuid_v7_of_now_and_each_is_different() {
        let before = std::time::SystemTime::now();
        let ids: Vec<HeaderValue> = (0..1000).map(|_| request_id(&HeaderMap::new())).collect();
        let parsed: Vec<uuid::Uuid> =
            ids.iter().map(|v| v.to_str().expect("text").parse().expect("a UUID")).collect();
        assert!(parsed.iter().all(|u| u.get_version_num() == 7 && u.get_variant() == uuid::Variant::RFC4122));
        for (id, uuid) in ids.iter().zip(&parsed) {
            assert_eq!(id.to_str().expect("text"), uuid.hyphenated().to_string(), "lowercase, hyphenated");
        }
        let (secs, _) = parsed[0].get_timestamp().expect("a time").to_unix();
        let now = before.duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
        assert!(secs.abs_diff(now) <= 1, "{secs} vs {now}");
        let distinct: std::collections::HashSet<_> = parsed.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }

    #[test]
    fn a_client_s_plain_request_id_is_kept_and_a_forged_one_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(X_REQUEST_ID.clone(), HeaderValue::from_static("edge-42"));
        assert_eq!(request_id(&headers), "edge-42");
        headers.insert(X_REQUEST_ID.clone(), HeaderValue::from_static("a b\"}"));
        assert_ne!(request_id(&headers), "a b\"}");
    }
}
