//! The request id: taken from `X-Request-Id` (the gateway sets it) or made here, put on every
//! log line of the request through its span, into every problem body answered while it is
//! served ([`current`]), and returned on the response.

use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header that carries the request id from the gateway through every service.
pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    /// The id of the request the current task serves.
    static CURRENT: String;
}

/// The id of the request being served by [`layer`] in this task, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The id of the request being served, as a request extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The request's id: the `X-Request-Id` it carries if that is short and plain (so it cannot
/// forge log lines), else a new UUIDv7. The gateway and every service use this one rule.
pub fn from_headers(headers: &http::HeaderMap) -> String {
    headers
        .get(&HEADER)
        .filter(|v| acceptable(v))
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_string)
}

/// Whether a received request id may be kept: short and plain, so it cannot forge log lines.
pub fn acceptable(v: &HeaderValue) -> bool {
    let s = v.as_bytes();
    !s.is_empty() && s.len() <= 128 && s.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

/// Middleware: assigns the id, runs the request inside a span carrying it, logs the outcome.
pub async fn layer(mut req: Request, next: Next) -> Response {
    let id = from_headers(req.headers());
    let header = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    req.headers_mut().insert(HEADER.clone(), header.clone());
    req.extensions_mut().insert(RequestId(id.clone()));

    // Health probes (Docker's HEALTHCHECK, the gateway) arrive every few seconds: a success
    // is logged at debug so it does not bury the requests people make.
    let probe = matches!(req.uri().path(), "/healthz" | "/readyz");
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let started = Instant::now();
    let mut response = CURRENT.scope(id, next.run(req)).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, elapsed_ms, "request failed");
        } else if probe {
            tracing::debug!(status, elapsed_ms, "request finished");
        } else {
            tracing::info!(status, elapsed_ms, "request finished");
        }
    });
    response.headers_mut().insert(HEADER.clone(), header);
    response
}
