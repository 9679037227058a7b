//! Admission: whether a request goes upstream at all, decided before anything about it
//! changes: the head's checks, the normalised path, the route, the client's rate limit and the
//! declared body size; and, once the client's hop-by-hop headers are gone, a protected route's
//! access token.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::Request;
use http::header::{self, HeaderMap, HeaderValue};

use super::refusal::Refusal;
use super::{Body, Proxy, X_USER_ID, host_of, target};
use crate::routes::Route;

/// A request the gateway will forward: its route, its path if normalising changed it
/// (routing, `protected` and the instance all see the same, normalised path), and its one
/// `Host` field, looked up once.
#[derive(Debug)]
pub struct Admitted {
    pub route: Arc<Route>,
    pub normalized: Option<String>,
    pub host: Option<HeaderValue>,
}

/// A refusal, with the route when one was found (for the access log).
pub type Refused = (Refusal, Option<Arc<Route>>);

impl Proxy {
    /// `now`: when the request came (its rate limit is reckoned from then).
    pub(super) fn admit(
        &self,
        req: &Request<Body>,
        peer: SocketAddr,
        now: Instant,
    ) -> Result<Admitted, Refused> {
        let host_field = target::check_head(req).map_err(|m| (Refusal::Malformed(m), None))?;
        let normalized = match target::normalize(req.uri().path()) {
            Ok(Cow::Borrowed(_)) => None,
            Ok(Cow::Owned(path)) => Some(path),
            Err(m) => return Err((Refusal::Malformed(m), None)),
        };
        let route = {
            let host = host_of(host_field, req.uri());
            let table = self.table.load();
            table.find(&host, normalized.as_deref().unwrap_or(req.uri().path())).cloned()
        };
        let route = route.ok_or((Refusal::NoRoute, None))?;
        let client = self.trusted.client_ip(peer.ip(), req.headers());
        if let Some(rate) = route.rate_limit
            && let Err(wait) = self.limiter.check(route.key, kit::client_ip::bucket(client), rate, now)
        {
            return Err((Refusal::RateLimited { wait }, Some(route)));
        }
        let too_big = self.body_limit > 0
            && req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .is_some_and(|n| n > self.body_limit as u64);
        if too_big {
            return Err((Refusal::BodyTooLarge, Some(route)));
        }
        Ok(Admitted { route, normalized, host: host_field.cloned() })
    }

    /// For a protected route: the user id of a valid bearer token, as `X-User-Id` (the
    /// client's own `X-User-Id` is already gone).
    pub(super) async fn authenticate(&self, headers: &mut HeaderMap) -> Result<(), Refusal> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let verified = match token {
            Some(t) => self.edge.verify(t.trim()).await,
            None => Err(token::TokenError::Malformed),
        };
        let user =
            verified.ok().and_then(|user| HeaderValue::from_str(&user).ok()).ok_or(Refusal::Unauthorized)?;
        headers.insert(X_USER_ID.clone(), user);
        Ok(())
    }
}
