//! Forwarding with retries: the body capped at the limit, an instance picked (never one
//! already tried), the request sent with the upstream timeout, and a retry where it is safe:
//! after a failed connection (nothing was sent), or after a 502/503 or a failed exchange for
//! an idempotent request with a replayable body, within the retry budget.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Body as _;

use super::headers::{Kept, strip_hop_by_hop};
use super::refusal::Refusal;
use super::{Body, Call, MAX_ATTEMPTS, Proxy, Routed, capped, empty, upgrade};
use crate::routes::Route;
use crate::upstream::{InFlight, Passed, SendError, Set, idempotent, pick};

/// The request body as sent upstream, cut at `limit` (0: no limit). A body of unknown length
/// is cut while it streams; the flag says whether it was, and then the answer is 413 whatever
/// the instance made of the cut request.
fn limited(body: Body, limit: usize, has_length: bool) -> (Body, Option<Arc<AtomicBool>>) {
    if limit == 0 {
        (body, None)
    } else if body.is_end_stream() || has_length {
        (Limited::new(body, limit).boxed(), None)
    } else {
        let (capped, over) = capped::Capped::new(body, limit);
        (capped.boxed(), Some(over))
    }
}

/// What one attempt came to.
enum Attempt {
    Answered(Response<Body>, Option<Passed>),
    Retry,
    Refused(Refusal),
}

impl Proxy {
    pub(super) async fn forward(
        &self,
        route: Arc<Route>,
        req: Request<Body>,
        mut uri: Uri,
        kept: Kept,
        set: &Set<'_>,
        Call { id, started }: Call<'_>,
    ) -> Routed {
        let (mut parts, body) = req.into_parts();
        let replayable = body.is_end_stream();
        let idempotent = idempotent(&parts.method);
        // Headers are copied per attempt only when a second attempt is possible.
        let may_retry = replayable && route.instances.len() > 1;
        let (body, over_limit) = if replayable {
            (empty(), None)
        } else {
            limited(body, self.body_limit, parts.headers.contains_key(http::header::CONTENT_LENGTH))
        };
        let mut body = Some(body);
        let over = || over_limit.as_ref().is_some_and(|o| o.load(Ordering::Acquire));
        let mut tried = [SocketAddr::from(([0, 0, 0, 0], 0)); MAX_ATTEMPTS];
        let mut attempts = 0;
        loop {
            // The first attempt reckons from the request's arrival; a retry from its own start.
            let now = if attempts == 0 { started } else { Instant::now() };
            let Some(slot) = pick(&route.instances, &route.balancer, &tried[..attempts], now) else {
                let (refusal, last) = match attempts {
                    0 => (Refusal::NoHealthyInstance, None),
                    n => (Refusal::BadGateway, Some(tried[n - 1])),
                };
                return self.refused(refusal, Some(route), last, id);
            };
            let addr = slot.0.addr;
            tried[attempts] = addr;
            attempts += 1;
            let last_chance = !may_retry || attempts == MAX_ATTEMPTS;
            let mut upstream =
                Request::new(if replayable { empty() } else { body.take().unwrap_or_else(empty) });
            *upstream.method_mut() = parts.method.clone();
            *upstream.uri_mut() = if last_chance { std::mem::take(&mut uri) } else { uri.clone() };
            *upstream.headers_mut() =
                if last_chance { std::mem::take(&mut parts.headers) } else { parts.headers.clone() };
            let can_retry = !last_chance && idempotent;
            let deadline = tokio::time::Instant::from_std(now) + self.upstream_timeout;
            match self.attempt(&slot, upstream, set, (can_retry, last_chance), deadline, &over).await {
                Attempt::Retry => self.metrics.retries.fetch_add(1, Ordering::Relaxed),
                Attempt::Refused(refusal) => return self.refused(refusal, Some(route), Some(addr), id),
                Attempt::Answered(res, passed) => {
                    return (answer(res, kept, addr), passed, Some(route), Some(addr));
                }
            };
        }
    }

    /// One exchange with one instance, and whether to try another.
    async fn attempt(
        &self,
        slot: &InFlight,
        req: Request<Body>,
        set: &Set<'_>,
        (can_retry, last_chance): (bool, bool),
        deadline: tokio::time::Instant,
        over_limit: &(dyn Fn() -> bool + Sync),
    ) -> Attempt {
        let addr = slot.0.addr;
        match slot.0.pool.send(addr, req, set, deadline).await {
            _ if over_limit() => Attempt::Refused(Refusal::BodyTooLarge),
            Ok((res, passed)) => {
                let status = res.status();
                slot.0.answered(status.as_u16());
                let unavailable = matches!(status, StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE);
                if can_retry && unavailable && self.retry_budget.allow(&self.metrics) {
                    return Attempt::Retry;
                }
                Attempt::Answered(res, passed)
            }
            Err(SendError::TimedOut) => Attempt::Refused(Refusal::GatewayTimeout),
            Err(error) => {
                let unsent = matches!(error, SendError::Connect(_));
                if unsent {
                    slot.0.eject();
                }
                tracing::warn!(instance = %addr, %error, "upstream request failed");
                if can_retry || (unsent && !last_chance) {
                    Attempt::Retry
                } else {
                    Attempt::Refused(Refusal::BadGateway)
                }
            }
        }
    }
}

/// The instance's answer for the client: a tunnel for an accepted upgrade, else the response
/// without its hop-by-hop headers.
fn answer(mut res: Response<Body>, kept: Kept, addr: SocketAddr) -> Response<Body> {
    if res.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some((protocol, client_side)) = kept.upgrade
    {
        return upgrade::tunnel(res, protocol, client_side, addr);
    }
    strip_hop_by_hop(res.headers_mut());
    res
}
