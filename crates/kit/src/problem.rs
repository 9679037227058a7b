//! RFC 9457 problem details: the one shape every API error takes.
//!
//! `type` is a stable `tag:` URI (RFC 9457 §4 suggests tag URIs for types that are not meant
//! to be dereferenced): `tag:slipway.dev,2026:problem/<slug>`. Clients match on the slug.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

/// The `type` URI of a problem slug.
pub fn type_uri(slug: &str) -> String {
    format!("tag:slipway.dev,2026:problem/{slug}")
}

/// An `application/problem+json` response.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Extension members, flattened into the body.
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
    #[serde(skip)]
    retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: impl Into<String>) -> Self {
        Self {
            type_: type_uri(slug),
            title: title.into(),
            status: status.as_u16(),
            detail: None,
            extensions: Map::new(),
            retry_after: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn extension(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.to_string(), value.into());
        self
    }

    /// Adds a `Retry-After` header (seconds) to the response.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed")
    }

    /// A 500 that says nothing about the cause; log the cause with [`log_internal`] first.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal server error")
            .detail("Something went wrong on our side. Quote the request id when reporting it.")
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// Logs an internal error's whole cause chain on the current span (which carries the request id).
pub fn log_internal(error: &anyhow::Error) {
    tracing::error!(error = format!("{error:#}"), "internal error");
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = self.retry_after;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The fallback for unknown paths: a 404 problem.
pub async fn not_found() -> Problem {
    Problem::not_found()
}
