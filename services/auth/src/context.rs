//! Who is asking: the client's IP (through trusted proxies only), user agent and request id,
//! for rate limits and the audit trail; and the authenticated user behind a bearer token.

use std::net::IpAddr;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use kit::client_ip::ClientIp;
use kit::request_id::RequestId;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::sessions;

#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub ip: IpAddr,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl FromRequestParts<AppState> for RequestCtx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Ok(ClientIp(ip)) = ClientIp::from_request_parts(parts, state).await;
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect());
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
        Ok(Self { ip, user_agent, request_id })
    }
}

/// A request carrying a valid access token of a live session.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated {
    pub user: Uuid,
    pub session: Uuid,
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        let claims = state.keys.verify(token.trim()).map_err(|e| {
            tracing::info!(reason = %e, "access token refused");
            ApiError::Unauthorized
        })?;
        if !sessions::is_live(&state.pool, claims.sid).await? {
            return Err(ApiError::Unauthorized);
        }
        Ok(Self { user: claims.sub, session: claims.sid })
    }
}

impl OptionalFromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        match <Self as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(a) => Ok(Some(a)),
            Err(ApiError::Unauthorized) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
