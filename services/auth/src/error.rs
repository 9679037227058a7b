//! Auth's API errors: one enum, each variant a status and a stable problem type.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kit::problem::Slug;
use kit::problem::{Problem, log_internal};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field failed its rules (422), with what is expected.
    #[error("invalid {field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("account not activated")]
    NotActivated,
    #[error("missing or invalid access token")]
    Unauthorized,
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    #[error("token {0}")]
    Token(TokenProblem),
    #[error("rate limited")]
    RateLimited { retry_after: u64 },
    #[error("account locked")]
    Locked { retry_after: u64 },
    /// Too much work queued (password hashing): try again shortly (503).
    #[error("busy")]
    Busy { retry_after: u64 },
    /// The database cannot be reached right now (restarting, say): try again shortly (503).
    #[error("database unavailable")]
    Unavailable { retry_after: u64 },
    /// Anything unexpected: logged with its cause chain, answered with a bare 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Why a one-time token (activation, reset) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Invalid,
    Used,
    Expired,
}

impl std::fmt::Display for TokenProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Invalid => "invalid",
            Self::Used => "used",
            Self::Expired => "expired",
        })
    }
}

impl From<sqlx::Error> for ApiError {
    /// The database unreachable, restarting or out of connections is 503 with `Retry-After`
    /// (the client may simply try again); any other database error is a 500.
    fn from(e: sqlx::Error) -> Self {
        if kit::db::is_unavailable(&e) {
            tracing::warn!(error = %e, "the database is unavailable: answering 503");
            return Self::Unavailable { retry_after: 1 };
        }
        Self::Internal(anyhow::Error::new(e).context("database"))
    }
}

impl From<crate::hashing::HashError> for ApiError {
    fn from(e: crate::hashing::HashError) -> Self {
        match e {
            crate::hashing::HashError::Busy => {
                tracing::warn!("password hasher queue full: request refused with 503");
                Self::Busy { retry_after: 1 }
            }
            crate::hashing::HashError::Failed(error) => Self::Internal(error),
        }
    }
}

impl ApiError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { field, message: message.into() }
    }

    fn problem(self) -> Problem {
        use StatusCode as S;
        match self {
            Self::Invalid { field, message } => {
                Problem::new(S::UNPROCESSABLE_ENTITY, Slug::VALIDATION, "Invalid input")
                    .detail(format!("{field}: {message}"))
                    .extension("errors", json!([{ "field": field, "message": message }]))
            }
            Self::InvalidCredentials => {
                Problem::new(S::UNAUTHORIZED, Slug::INVALID_CREDENTIALS, "Wrong email or password")
            }
            Self::NotActivated => {
                Problem::new(S::FORBIDDEN, Slug::ACCOUNT_NOT_ACTIVATED, "Account not activated")
                    .detail(
                        "Open the link in the email we sent to activate the account, or ask for a new one.",
                    )
                    .extension("resend", "/activation/resend")
            }
            Self::Unauthorized => Problem::new(S::UNAUTHORIZED, Slug::UNAUTHORIZED, "Sign in required")
                .detail("Send a valid access token: `Authorization: Bearer <token>`."),
            Self::InvalidRefreshToken => {
                Problem::new(S::UNAUTHORIZED, Slug::INVALID_REFRESH_TOKEN, "Session expired")
                    .detail("Sign in again.")
            }
            Self::Token(TokenProblem::Invalid) => {
                Problem::new(S::NOT_FOUND, Slug::TOKEN_INVALID, "This link is not valid")
            }
            Self::Token(TokenProblem::Used) => {
                Problem::new(S::GONE, Slug::TOKEN_USED, "This link was already used")
            }
            Self::Token(TokenProblem::Expired) => {
                Problem::new(S::GONE, Slug::TOKEN_EXPIRED, "This link has expired")
                    .detail("Ask for a new one.")
            }
            Self::RateLimited { retry_after } => {
                Problem::new(S::TOO_MANY_REQUESTS, Slug::RATE_LIMITED, "Too many requests")
                    .detail(format!("Try again in {retry_after} seconds."))
                    .retry_after(retry_after)
            }
            Self::Locked { retry_after } => Problem::new(
                S::TOO_MANY_REQUESTS,
                Slug::ACCOUNT_LOCKED,
                "Too many failed sign-ins",
            )
            .detail(format!(
                "Sign-in to this account is paused; try again in {retry_after} seconds or reset the password."
            ))
            .retry_after(retry_after),
            Self::Busy { retry_after } => {
                Problem::new(S::SERVICE_UNAVAILABLE, Slug::BUSY, "Too busy right now")
                    .detail(format!("Try again in {retry_after} seconds."))
                    .retry_after(retry_after)
            }
            Self::Unavailable { retry_after } => {
                Problem::new(S::SERVICE_UNAVAILABLE, Slug::UNAVAILABLE, "Temporarily unavailable")
                    .detail(format!("Try again in {retry_after} seconds."))
                    .retry_after(retry_after)
            }
            Self::Internal(error) => {
                log_internal(&error);
                Problem::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unauthorized = matches!(self, Self::Unauthorized);
        let mut response = self.problem().into_response();
        if unauthorized {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
