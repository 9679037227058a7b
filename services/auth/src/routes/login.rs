//! Login with a password.

use axum::Json;
use axum::extract::State;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use utoipa::ToSchema;

use super::ProblemDoc;
use super::sessions::{Tokens, start_session};
use super::signup::email;
use crate::context::RequestCtx;
use crate::error::ApiError;
use crate::hashing::Verified;
use crate::state::AppState;
use crate::store::audit::{self, Entry};
use crate::store::limiter::{self, Decision};
use crate::store::users;

/// Passwords longer than this are refused before hashing (hashing is the expensive part).
const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    #[schema(value_type = String)]
    pub password: SecretString,
}

/// Signs in. A wrong password and an unknown email get the same answer in the same time;
/// repeated failures on one account lock it for a while.
#[utoipa::path(post, path = "/login", tag = "sessions", request_body = LoginRequest, responses(
    (status = 200, body = Tokens),
    (status = 401, body = ProblemDoc, description = "wrong email or password"),
    (status = 403, body = ProblemDoc, description = "account not activated; offers a resend"),
    (status = 429, body = ProblemDoc, description = "rate limited or account locked")))]
pub async fn login(
    State(app): State<AppState>,
    ctx: RequestCtx,
    kit::extract::Json(req): kit::extract::Json<LoginRequest>,
) -> Result<Json<Tokens>, ApiError> {
    let email = email(&req.email)?;
    if req.password.expose_secret().len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid("password", format!("at most {MAX_PASSWORD_BYTES} bytes")));
    }
    let limits = app.config.limits;
    app.limit("login", &ctx, &email, limits.login_ip, limits.login_email).await?;
    let failures_key = format!("login-failed:{email}");
    if let Some(lockout) = limits.lockout
        && let Decision::Limited { retry_after } = limiter::peek(&app.pool, &failures_key, lockout).await?
    {
        let entry = Entry { event: "login", outcome: "locked", user: None, email: Some(email.as_str()) };
        audit::record(&app.pool, &ctx, entry).await?;
        return Err(ApiError::Locked { retry_after });
    }

    let user = users::by_email(&app.pool, &email).await?;
    let verified = app.hasher.verify(&req.password, user.as_ref().map(|u| u.password_hash.as_str())).await?;
    let (user, rehash) = match (user, verified) {
        (Some(user), Verified::Match { rehash }) => (user, rehash),
        (user, _) => {
            if let Some(lockout) = limits.lockout {
                limiter::hit(&app.pool, &failures_key, lockout).await?;
            }
            let entry = Entry {
                event: "login",
                outcome: "bad-credentials",
                user: user.map(|u| u.id),
                email: Some(email.as_str()),
            };
            audit::record(&app.pool, &ctx, entry).await?;
            return Err(ApiError::InvalidCredentials);
        }
    };
    if user.activated_at.is_none() {
        let entry = Entry {
            event: "login",
            outcome: "not-activated",
            user: Some(user.id),
            email: Some(email.as_str()),
        };
        audit::record(&app.pool, &ctx, entry).await?;
        return Err(ApiError::NotActivated);
    }
    limiter::clear(&app.pool, &failures_key).await?;
    if rehash {
        let new_hash = app.hasher.hash_secret(&req.password).await?;
        users::upgrade_hash(&app.pool, user.id, &user.password_hash, &new_hash).await?;
        tracing::info!(user_id = %user.id, "password rehashed with the current argon2 parameters");
    }
    let mut tx = app.pool.begin().await?;
    let tokens = start_session(&mut tx, &app, user.id, &ctx).await?;
    let entry =
        Entry { event: "login", outcome: "success", user: Some(user.id), email: Some(email.as_str()) };
    audit::record(&mut *tx, &ctx, entry).await?;
    tx.commit().await?;
    Ok(Json(tokens))
}
