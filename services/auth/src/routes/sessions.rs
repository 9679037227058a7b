//! Refresh with rotation and reuse detection; logout; logout everywhere.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kit::extract::Json as JsonBody;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ProblemDoc;
use crate::context::{Authenticated, RequestCtx};
use crate::domain::SecretToken;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::audit::{self, Entry};
use crate::store::sessions;

/// An access token (JWT, short-lived) and a refresh token (opaque, single use).
#[derive(Debug, Serialize, ToSchema)]
pub struct Tokens {
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
    pub refresh_expires_in: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[schema(pattern = "^[A-Za-z0-9_-]{43}$")]
    pub refresh_token: String,
}

/// Opens a session for a user and returns its first tokens.
pub async fn start_session(
    tx: &mut PgConnection,
    app: &AppState,
    user: Uuid,
    ctx: &RequestCtx,
) -> Result<Tokens, ApiError> {
    let session = sessions::create(&mut *tx, user, ctx.ip, ctx.user_agent.as_deref()).await?;
    tokens_for(tx, app, user, session, SecretToken::generate()).await
}

async fn tokens_for(
    tx: &mut PgConnection,
    app: &AppState,
    user: Uuid,
    session: Uuid,
    refresh: SecretToken,
) -> Result<Tokens, ApiError> {
    let ttl = app.config.sessions.refresh_ttl;
    sessions::add_refresh(&mut *tx, &app.tokens, session, &refresh, ttl).await?;
    Ok(Tokens {
        access_token: app.keys.issue(user, session)?,
        token_type: "Bearer",
        expires_in: app.keys.ttl().as_secs(),
        refresh_token: refresh.expose().to_string(),
        refresh_expires_in: ttl.as_secs(),
    })
}

/// Trades a refresh token for new tokens. Each refresh token works once; presented again
/// within the grace period (meant for parallel tabs) it yields the same successor, so a session
/// never forks into two chains; presented after it, it revokes its whole session.
#[utoipa::path(post, path = "/token/refresh", tag = "sessions", request_body = RefreshRequest, responses(
    (status = 200, body = Tokens),
    (status = 401, body = ProblemDoc, description = "unknown, expired, revoked or reused token")))]
pub async fn refresh(
    State(app): State<AppState>,
    ctx: RequestCtx,
    JsonBody(req): JsonBody<RefreshRequest>,
) -> Result<Json<Tokens>, ApiError> {
    let token = SecretToken::parse(&req.refresh_token).ok_or(ApiError::InvalidRefreshToken)?;
    let hash = app.tokens.hash(&token);
    let mut tx = app.pool.begin().await?;
    let Some(presented) = sessions::lock_refresh(&mut tx, &hash).await? else {
        return Err(ApiError::InvalidRefreshToken);
    };
    let user = Some(presented.user_id);
    let outcome = match presented.used_at {
        _ if presented.revoked || presented.expired => "rejected",
        None => "rotated",
        Some(used) => {
            let since = (chrono::Utc::now() - used).to_std().unwrap_or_default();
            if since <= app.config.sessions.reuse_grace { "grace" } else { "reuse-detected" }
        }
    };
    match outcome {
        "rotated" => sessions::mark_used(&mut *tx, &hash).await?,
        "grace" => {}
        "reuse-detected" => {
            sessions::revoke(&mut *tx, presented.session_id, "refresh-token-reuse").await?;
            tracing::warn!(session_id = %presented.session_id, "refresh token reused: session revoked");
        }
        _ => {}
    }
    audit::record(&mut *tx, &ctx, Entry { event: "refresh", outcome, user, email: None }).await?;
    if !matches!(outcome, "rotated" | "grace") {
        tx.commit().await?;
        return Err(ApiError::InvalidRefreshToken);
    }
    let successor = app.tokens.successor(&token);
    let tokens = tokens_for(&mut tx, &app, presented.user_id, presented.session_id, successor).await?;
    tx.commit().await?;
    Ok(Json(tokens))
}

/// Any refresh token, valid or not: logging out never says whether a token was live.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    pub refresh_token: String,
}

/// Ends the session a refresh token belongs to. Always 204.
#[utoipa::path(post, path = "/logout", tag = "sessions", request_body = LogoutRequest,
    responses((status = 204, description = "the session, if any, is revoked")))]
pub async fn logout(
    State(app): State<AppState>,
    ctx: RequestCtx,
    JsonBody(req): JsonBody<LogoutRequest>,
) -> Result<StatusCode, ApiError> {
    if let Some(token) = SecretToken::parse(&req.refresh_token)
        && let Some(session) = sessions::of_refresh(&app.pool, &app.tokens.hash(&token)).await?
    {
        sessions::revoke(&app.pool, session, "logout").await?;
        audit::record(
            &app.pool,
            &ctx,
            Entry { event: "logout", outcome: "success", user: None, email: None },
        )
        .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of the signed-in user.
#[utoipa::path(post, path = "/logout/all", tag = "sessions", security(("bearer" = [])), responses(
    (status = 204, description = "every session revoked"),
    (status = 401, body = ProblemDoc)))]
pub async fn logout_all(
    State(app): State<AppState>,
    ctx: RequestCtx,
    auth: Authenticated,
) -> Result<StatusCode, ApiError> {
    let n = sessions::revoke_all(&app.pool, auth.user, None, "logout-everywhere").await?;
    tracing::info!(user_id = %auth.user, sessions = n, "logged out everywhere");
    audit::record(
        &app.pool,
        &ctx,
        Entry { event: "logout-all", outcome: "success", user: Some(auth.user), email: None },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
