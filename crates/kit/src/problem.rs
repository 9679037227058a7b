//! RFC 9457 problem details: the one shape every error answer takes, in every service and
//! the gateway.
//!
//! `type` is a stable `tag:` URI, `tag:slipway.dev,2026:problem/<slug>`, the slug from the
//! catalogue ([`Slug`]); clients match on the slug. Every body carries the request id
//! (`request_id`), so a user's report leads to the log lines: [`crate::request_id::layer`]
//! makes it known to problems rendered while it serves, and the gateway sets it itself.
//! [`Problem::into_http`] renders one without axum (the gateway runs on hyper alone).

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::{Map, Value};

mod slug;

pub use slug::Slug;

/// An `application/problem+json` response.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// A URI naming the problem type: the slug's (see [`Slug::type_uri`]).
    #[serde(rename = "type")]
    pub type_: String,
    /// A short summary of the problem type, the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What happened this time, in words the client can show or act on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Extension members, flattened into the body.
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
    /// The request's id: the serving request's unless set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip)]
    retry_after: Option<u64>,
}

impl Problem {
    /// A problem of type `slug` answered with `status`.
    pub fn new(status: StatusCode, slug: Slug, title: impl Into<String>) -> Self {
        Self {
            type_: slug.type_uri(),
            title: title.into(),
            status: status.as_u16(),
            detail: None,
            extensions: Map::new(),
            request_id: crate::request_id::current(),
            retry_after: None,
        }
    }

    /// Sets the request id (where no request is being served by the kit's layer: the gateway).
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Adds what happened this time.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds a member of the problem's own (RFC 9457 extensions), such as `errors`.
    pub fn extension(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.to_string(), value.into());
        self
    }

    /// Adds a `Retry-After` header (seconds) to the response.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 404 for a path no route serves.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, Slug::NOT_FOUND, "Not found")
    }

    /// 405 for a method the path does not take.
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, Slug::METHOD_NOT_ALLOWED, "Method not allowed")
    }

    /// A 500 that says nothing about the cause; log the cause with [`log_internal`] first.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, Slug::INTERNAL, "Internal server error")
            .detail("Something went wrong on our side. Quote the request id when reporting it.")
    }

    /// The status the problem is answered with.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// Logs an internal error's whole cause chain on the current span (which carries the request id).
pub fn log_internal(error: &anyhow::Error) {
    tracing::error!(error = format!("{error:#}"), "internal error");
}

impl Problem {
    /// The response: `application/problem+json`, with `Retry-After` when set.
    pub fn into_http(self) -> http::Response<Vec<u8>> {
        let status = self.status();
        let retry_after = self.retry_after;
        let mut response = http::Response::new(serde_json::to_vec(&self).unwrap_or_default());
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.into_http().map(axum::body::Body::from).into_response()
    }
}

/// The fallback for unknown paths: a 404 problem.
pub async fn not_found() -> Problem {
    Problem::not_found()
}
