//! Auth's API errors: one enum, each variant a status and a stable problem type.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kit::problem::{Problem, log_internal};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not found")]
    NotFound,
    /// Anything unexpected: logged with its cause chain, answered with a bare 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::NotFound => Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found").into_response(),
            Self::Internal(error) => {
                log_internal(&error);
                Problem::internal().into_response()
            }
        }
    }
}
