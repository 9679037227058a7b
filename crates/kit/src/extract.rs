//! Request extractors whose rejections are problem+json, so bad input is a clear 4xx.

use crate::problem::Slug;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// `axum::Json`, rejecting with a problem: 415 without a JSON content type, 400 for malformed
/// JSON, 413 for an oversized body, 422 for JSON of the wrong shape (wrong types, missing or
/// unknown fields), with serde's words for what is wrong.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(problem_for(&rejection)),
        }
    }
}

fn problem_for(rejection: &JsonRejection) -> Problem {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, Slug::UNSUPPORTED_MEDIA_TYPE, "Expected JSON")
                .detail("Send the body as JSON with `Content-Type: application/json`.")
        }
        JsonRejection::JsonSyntaxError(e) => {
            Problem::new(StatusCode::BAD_REQUEST, Slug::MALFORMED_JSON, "Malformed JSON")
                .detail(e.body_text())
        }
        JsonRejection::JsonDataError(e) => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, Slug::INVALID_BODY, "Invalid request body")
                .detail(e.body_text())
        }
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, Slug::BODY_TOO_LARGE, "Request body too large")
        }
        other => Problem::new(other.status(), Slug::BAD_REQUEST, "Bad request").detail(other.body_text()),
    }
}
