//! The proxy itself: route, limit, authenticate, pick an instance, forward, retry what is safe
//! to retry, and log one access line per request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as _, Incoming};
use kit::client_ip::TrustedProxies;
use kit::problem::{Problem, Slug};

mod capped;
mod target;
mod upgrade;

use crate::access_log::{AccessLog, Entry};
use crate::edge_auth::EdgeAuth;
use crate::limiter::Limiter;
use crate::routes::{Route, Table};
use crate::upstream::{SendError, pick};

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
}

/// Retries after a 502/503 answer are allowed while they stay under a fifth of all requests
/// (plus a few to start with), so a failing fleet is not hit with a retry storm. Retries after
/// a failed connection are not counted against it: nothing reached the instance.
#[derive(Debug, Default)]
pub struct RetryBudget {
    spent: AtomicU64,
}

impl RetryBudget {
    const RATIO: u64 = 5;
    const MIN: u64 = 10;

    pub fn allow(&self, metrics: &Metrics) -> bool {
        let requests = metrics.requests.load(Ordering::Relaxed);
        let allowed = requests / Self::RATIO + Self::MIN;
        self.spent
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| (s < allowed).then_some(s + 1))
            .is_ok()
    }
}

const MAX_ATTEMPTS: usize = 4;
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_USER_ID: HeaderName = HeaderName::from_static("x-user-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// A refusal of the gateway's own: a problem from the kit's catalogue with the request id.
fn problem(
    status: StatusCode,
    slug: Slug,
    title: &str,
    retry_after: Option<u64>,
    rid: &str,
) -> Response<Body> {
    let mut problem = Problem::new(status, slug, title).request_id(rid);
    if let Some(seconds) = retry_after {
        problem = problem.retry_after(seconds);
    }
    problem.into_http().map(|body| Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed())
}

fn body_too_large(rid: &str) -> Response<Body> {
    problem(StatusCode::PAYLOAD_TOO_LARGE, Slug::BODY_TOO_LARGE, "The request body is too large", None, rid)
}

/// Removes hop-by-hop headers, including those the Connection header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

/// The request's host, lowercased, without its port (IPv6 literals keep their brackets).
fn host_of(req: &Request<Incoming>) -> std::borrow::Cow<'_, str> {
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or("");
    let host = if raw.starts_with('[') {
        raw.split_inclusive(']').next().unwrap_or(raw)
    } else {
        raw.split(':').next().unwrap_or(raw)
    };
    // `example.com.` is `example.com` (a fully qualified name).
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) { host.to_ascii_lowercase().into() } else { host.into() }
}

/// The request id as a header value: the client's if acceptable, else a new one.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    let id = kit::request_id::from_headers(headers);
    HeaderValue::from_maybe_shared(Bytes::from(id.into_bytes()))
        .unwrap_or_else(|_| HeaderValue::from_static("-"))
}

type Routed = (Response<Body>, Option<Arc<Route>>, Option<SocketAddr>);

/// 308 to the same host and target over HTTPS (308 keeps the method and body).
fn redirect_to_https(req: &Request<Incoming>, port: u16, rid: &HeaderValue) -> Response<Body> {
    let host = host_of(req);
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
        _ => problem(
            StatusCode::BAD_REQUEST,
            Slug::BAD_REQUEST,
            "A request needs a Host",
            None,
            rid.to_str().unwrap_or("-"),
        ),
    }
}

impl Proxy {
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
        https: bool,
    ) -> Result<Response<Body>, Infallible> {
        let started = Instant::now();
        let rid = request_id(req.headers());
        let method = req.method().clone();
        let uri = req.uri().clone();
        let (mut response, route, instance) = match self.https_redirect {
            Some(port) if !https => (redirect_to_https(&req, port, &rid), None, None),
            _ => self.route(req, peer, https, &rid).await,
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
            request_id: rid.to_str().unwrap_or("-"),
            method: method.as_str(),
            path: uri.path(),
            route: route.as_deref().map(|r| r.name.as_str()),
            instance,
            status,
            elapsed: started.elapsed(),
        });
        response.headers_mut().insert(X_REQUEST_ID.clone(), rid);
        Ok(response)
    }

    async fn route(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        https: bool,
        rid: &HeaderValue,
    ) -> Routed {
        let id = rid.to_str().unwrap_or("-");
        let malformed = |m: target::Malformed| {
            let status = match m {
                target::Malformed::HeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            (problem(status, Slug::BAD_REQUEST, m.title(), None, id), None, None)
        };
        if let Err(m) = target::check_head(&req) {
            return malformed(m);
        }
        // Routing, `protected` and the instance all see the same, normalised path.
        let normalized = match target::normalize(req.uri().path()) {
            Ok(std::borrow::Cow::Borrowed(_)) => None,
            Ok(std::borrow::Cow::Owned(path)) => Some(path),
            Err(m) => return malformed(m),
        };
        let route = {
            let host = host_of(&req);
            let table = self.table.load();
            table.find(&host, normalized.as_deref().unwrap_or(req.uri().path())).cloned()
        };
        let Some(route) = route else {
            self.metrics.unknown_host.fetch_add(1, Ordering::Relaxed);
            return (
                problem(StatusCode::NOT_FOUND, Slug::NO_ROUTE, "No route for this host and path", None, id),
                None,
                None,
            );
        };
        let client = self.trusted.client_ip(peer.ip(), req.headers());
        if let Some(rate) = route.rate_limit
            && let Err(wait) = self.limiter.check(route.key, kit::client_ip::bucket(client), rate)
        {
            self.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
            return (
                problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    Slug::RATE_LIMITED,
                    "Too many requests",
                    Some(wait),
                    id,
                ),
                Some(route),
                None,
            );
        }
        let too_big = self.body_limit > 0
            && req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .is_some_and(|n| n > self.body_limit as u64);
        if too_big {
            return (body_too_large(id), Some(route), None);
        }
        let (mut parts, body) = req.into_parts();
        // Hop-by-hop headers go first, so `Connection:` can name only the client's own
        // headers, never one the gateway sets below.
        let original_host = parts.headers.get(header::HOST).cloned();
        let upgrade = upgrade::requested(&mut parts);
        strip_hop_by_hop(&mut parts.headers);
        target::drop_underscored(&mut parts.headers);
        parts.headers.remove(&X_USER_ID);
        if route.protected {
            let token = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            let verified = match token {
                Some(t) => self.edge.verify(t.trim()).await,
                None => Err(token::TokenError::Malformed),
            };
            match verified.ok().and_then(|user| HeaderValue::from_str(&user).ok()) {
                Some(user) => {
                    parts.headers.insert(X_USER_ID.clone(), user);
                }
                None => {
                    self.metrics.unauthorized.fetch_add(1, Ordering::Relaxed);
                    let mut res =
                        problem(StatusCode::UNAUTHORIZED, Slug::UNAUTHORIZED, "Sign in required", None, id);
                    res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                    return (res, Some(route), None);
                }
            }
        }
        // An HTTP/2 client names the site in the URI, not in a Host header.
        let original_host = original_host
            .or_else(|| parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()));
        if let Some(host) = &original_host {
            parts.headers.insert(header::HOST, host.clone());
        }
        if let Some((protocol, _)) = &upgrade {
            upgrade::ask(&mut parts.headers, protocol.clone());
        }
        let forwarded_for = match (
            self.trusted.contains(peer.ip()),
            parts.headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()),
        ) {
            (true, Some(prior)) => format!("{prior}, {}", peer.ip()),
            _ => peer.ip().to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&forwarded_for) {
            parts.headers.insert(X_FORWARDED_FOR.clone(), v);
        }
        if !self.trusted.contains(peer.ip()) || !parts.headers.contains_key(&X_FORWARDED_PROTO) {
            let scheme = if https { "https" } else { "http" };
            parts.headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(scheme));
        }
        if let Some(h) = original_host {
            parts.headers.insert(X_FORWARDED_HOST.clone(), h);
        }
        parts.headers.insert(X_REQUEST_ID.clone(), rid.clone());
        let routed_path = normalized.as_deref().unwrap_or(parts.uri.path());
        let path = route.upstream_path(routed_path);
        let path_and_query = if normalized.is_none() && path.len() == parts.uri.path().len() {
            parts.uri.path_and_query().cloned()
        } else {
            let pq = match parts.uri.query() {
                Some(q) => format!("{path}?{q}"),
                None => path.into_owned(),
            };
            PathAndQuery::from_maybe_shared(Bytes::from(pq.into_bytes())).ok()
        };
        // Origin form (`/path?query`) on the wire; the Host header says which site.
        let mut target = http::uri::Parts::default();
        target.path_and_query = path_and_query.or(Some(PathAndQuery::from_static("/")));
        let Ok(uri) = Uri::from_parts(target) else {
            return (
                problem(StatusCode::BAD_REQUEST, Slug::BAD_REQUEST, "Malformed request target", None, id),
                Some(route),
                None,
            );
        };
        let replayable = body.is_end_stream();
        let idempotent = matches!(
            parts.method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
        );
        // Headers are copied per attempt only when a second attempt is possible.
        let may_retry = replayable && route.instances.len() > 1;
        let limit = self.body_limit;
        // A body of unknown length is cut at the limit; if it was, the answer is 413 whatever
        // the instance made of the cut request.
        let mut over_limit = None;
        let mut body = Some(if limit == 0 {
            body.map_err(Into::into).boxed()
        } else if replayable || parts.headers.contains_key(header::CONTENT_LENGTH) {
            Limited::new(body, limit).boxed()
        } else {
            let (capped, over) = capped::Capped::new(body, limit);
            over_limit = Some(over);
            capped.boxed()
        });
        let too_large = |route: Arc<Route>, instance| (body_too_large(id), Some(route), Some(instance));
        let mut tried = [SocketAddr::from(([0, 0, 0, 0], 0)); MAX_ATTEMPTS];
        let mut attempts = 0;
        loop {
            let Some(slot) = pick(&route.instances, &route.balancer, &tried[..attempts]) else {
                if attempts == 0 {
                    self.metrics.no_healthy_instance.fetch_add(1, Ordering::Relaxed);
                    let res = problem(
                        StatusCode::SERVICE_UNAVAILABLE,
                        Slug::NO_HEALTHY_INSTANCE,
                        "No healthy instance",
                        Some(2),
                        id,
                    );
                    return (res, Some(route), None);
                }
                let last = tried[attempts - 1];
                return (
                    problem(StatusCode::BAD_GATEWAY, Slug::BAD_GATEWAY, "The upstream failed", Some(1), id),
                    Some(route),
                    Some(last),
                );
            };
            let addr = slot.0.addr;
            tried[attempts] = addr;
            attempts += 1;
            let this_body = if replayable { empty() } else { body.take().unwrap_or_else(empty) };
            let last_chance = !may_retry || attempts == MAX_ATTEMPTS;
            let mut upstream = Request::new(this_body);
            *upstream.method_mut() = parts.method.clone();
            *upstream.uri_mut() = uri.clone();
            *upstream.headers_mut() =
                if last_chance { std::mem::take(&mut parts.headers) } else { parts.headers.clone() };
            let can_retry = !last_chance && idempotent;
            match tokio::time::timeout(self.upstream_timeout, slot.0.pool.send(addr, upstream)).await {
                Ok(Ok(res)) => {
                    if over_limit.as_ref().is_some_and(|o| o.load(Ordering::Acquire)) {
                        return too_large(route, addr);
                    }
                    let status = res.status();
                    slot.0.answered(status.as_u16());
                    if can_retry
                        && matches!(status, StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE)
                        && self.retry_budget.allow(&self.metrics)
                    {
                        self.metrics.retries.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    if status == StatusCode::SWITCHING_PROTOCOLS
                        && let Some((protocol, client_side)) = upgrade
                    {
                        return (upgrade::tunnel(res, protocol, client_side, addr), Some(route), Some(addr));
                    }
                    let (mut head, incoming) = res.into_parts();
                    strip_hop_by_hop(&mut head.headers);
                    return (
                        Response::from_parts(head, incoming.map_err(Into::into).boxed()),
                        Some(route),
                        Some(addr),
                    );
                }
                Ok(Err(error)) => {
                    if over_limit.as_ref().is_some_and(|o| o.load(Ordering::Acquire)) {
                        return too_large(route, addr);
                    }
                    let unsent = matches!(error, SendError::Connect(_));
                    if unsent {
                        slot.0.eject();
                    }
                    tracing::warn!(instance = %addr, %error, "upstream request failed");
                    if can_retry || (unsent && !last_chance) {
                        self.metrics.retries.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    return (
                        problem(
                            StatusCode::BAD_GATEWAY,
                            Slug::BAD_GATEWAY,
                            "The upstream failed",
                            Some(1),
                            id,
                        ),
                        Some(route),
                        Some(addr),
                    );
                }
                Err(_) => {
                    return (
                        problem(
                            StatusCode::GATEWAY_TIMEOUT,
                            Slug::GATEWAY_TIMEOUT,
                            "The upstream took too long",
                            None,
                            id,
                        ),
                        Some(route),
                        Some(addr),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_budget_allows_a_few_then_a_fifth_of_requests() {
        let (budget, metrics) = (RetryBudget::default(), Metrics::default());
        assert_eq!((0..20).filter(|_| budget.allow(&metrics)).count(), 10, "a few to start with");
        metrics.requests.store(100, Ordering::Relaxed);
        assert_eq!((0..40).filter(|_| budget.allow(&metrics)).count(), 20, "then 20% of requests");
    }
}
