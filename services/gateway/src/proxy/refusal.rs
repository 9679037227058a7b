//! Every answer the gateway makes itself instead of forwarding: one enum, each refusal with its
//! status, problem slug, title, `Retry-After` and the metric it counts.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use kit::problem::{Problem, Slug};

use super::{Body, Metrics, target};

/// Why the gateway answered a request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The request's head or target is malformed (400, or 431 for an oversized header).
    Malformed(target::Malformed),
    /// HTTP/1.1 asked for an HTTPS redirect without a Host to redirect to.
    NoHost,
    /// The target cannot be rebuilt in origin form for the instance.
    BadTarget,
    /// No route for this host and path.
    NoRoute,
    /// The client is over the route's rate limit; it may try again after `wait` seconds.
    RateLimited { wait: u64 },
    /// The body is over the limit (by its `Content-Length`, or cut while it streamed).
    BodyTooLarge,
    /// A protected route without a valid access token.
    Unauthorized,
    /// The route has no instance in rotation.
    NoHealthyInstance,
    /// Every attempt failed or answered 502/503 past the retry budget.
    BadGateway,
    /// The instance took longer than the upstream timeout.
    GatewayTimeout,
}

impl Refusal {
    fn describe(self) -> (StatusCode, Slug, Option<u64>) {
        match self {
            Self::Malformed(target::Malformed::HeaderTooLarge) => {
                (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, Slug::BAD_REQUEST, None)
            }
            Self::Malformed(_) | Self::NoHost | Self::BadTarget => {
                (StatusCode::BAD_REQUEST, Slug::BAD_REQUEST, None)
            }
            Self::NoRoute => (StatusCode::NOT_FOUND, Slug::NO_ROUTE, None),
            Self::RateLimited { wait } => (StatusCode::TOO_MANY_REQUESTS, Slug::RATE_LIMITED, Some(wait)),
            Self::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, Slug::BODY_TOO_LARGE, None),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, Slug::UNAUTHORIZED, None),
            Self::NoHealthyInstance => (StatusCode::SERVICE_UNAVAILABLE, Slug::NO_HEALTHY_INSTANCE, Some(2)),
            Self::BadGateway => (StatusCode::BAD_GATEWAY, Slug::BAD_GATEWAY, Some(1)),
            Self::GatewayTimeout => (StatusCode::GATEWAY_TIMEOUT, Slug::GATEWAY_TIMEOUT, None),
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Malformed(m) => m.title(),
            Self::NoHost => "A request needs a Host",
            Self::BadTarget => "Malformed request target",
            Self::NoRoute => "No route for this host and path",
            Self::RateLimited { .. } => "Too many requests",
            Self::BodyTooLarge => "The request body is too large",
            Self::Unauthorized => "Sign in required",
            Self::NoHealthyInstance => "No healthy instance",
            Self::BadGateway => "The upstream failed",
            Self::GatewayTimeout => "The upstream took too long",
        }
    }

    /// Counts the refusal in the metric it has, if any.
    pub fn count(self, metrics: &Metrics) {
        let counter = match self {
            Self::NoRoute => &metrics.unknown_host,
            Self::RateLimited { .. } => &metrics.rate_limited,
            Self::Unauthorized => &metrics.unauthorized,
            Self::NoHealthyInstance => &metrics.no_healthy_instance,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The problem+json answer, carrying the request id.
    pub fn response(self, rid: &str) -> Response<Body> {
        let (status, slug, retry_after) = self.describe();
        let mut problem = Problem::new(status, slug, self.title()).request_id(rid);
        if let Some(seconds) = retry_after {
            problem = problem.retry_after(seconds);
        }
        let mut res = problem
            .into_http()
            .map(|body| Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed());
        if self == Self::Unauthorized {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}
