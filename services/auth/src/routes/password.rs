//! Password reset (by emailed link) and password change (knowing the current one).

use ::events::{PasswordChanged, PasswordResetRequested};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kit::extract::Json as JsonBody;
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use super::signup::{CHECK_EMAIL, EmailRequest, email};
use super::{Accepted, Done, ProblemDoc, one_time};
use crate::context::{Authenticated, RequestCtx};
use crate::domain::{Password, Purpose};
use crate::error::ApiError;
use crate::hashing::Verified;
use crate::state::AppState;
use crate::store::audit::{self, Entry};
use crate::store::events;
use crate::store::{limiter, tokens};
use crate::store::{sessions, users};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmResetRequest {
    #[schema(pattern = "^[A-Za-z0-9_-]{43}$")]
    pub token: String,
    #[schema(value_type = String, min_length = 8, max_length = 256)]
    pub new_password: SecretString,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    #[schema(value_type = String, max_length = 256)]
    pub current_password: SecretString,
    #[schema(value_type = String, min_length = 8, max_length = 256)]
    pub new_password: SecretString,
}

fn new_password(raw: SecretString) -> Result<Password, ApiError> {
    Password::parse(raw).map_err(|e| ApiError::invalid("new_password", e.to_string()))
}

/// Emails a reset link if the account exists; the same answer, after the same work, either
/// way (the request is queued and answered; the lookup happens after).
#[utoipa::path(post, path = "/password/reset", tag = "passwords", request_body = EmailRequest, responses(
    (status = 202, body = Accepted),
    (status = 429, body = ProblemDoc, description = "rate limited")))]
pub async fn request_reset(
    State(app): State<AppState>,
    ctx: RequestCtx,
    JsonBody(req): JsonBody<EmailRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let email = email(&req.email)?;
    let limits = app.config.limits;
    limiter::limit(&app.pool, "reset", ctx.ip, &email, limits.reset_ip, limits.reset_email).await?;
    crate::queue::enqueue(&app, crate::queue::topic::RESET_WANTED, &email, &ctx).await?;
    Ok((StatusCode::ACCEPTED, Json(CHECK_EMAIL)))
}

/// A reset request's work, done by the deferred worker after the answer: a link for an
/// existing account, an audit entry either way, in the caller's transaction.
pub async fn send_reset(
    tx: &mut sqlx::PgConnection,
    app: &AppState,
    email: &crate::domain::Email,
    ctx: &RequestCtx,
) -> Result<(), ApiError> {
    let user = users::by_email(&mut *tx, email).await?;
    if let Some(u) = &user {
        let ttl = app.config.sessions.reset_ttl;
        let token = tokens::create(&mut *tx, &app.tokens, u.id, Purpose::PasswordReset, ttl).await?;
        let event = PasswordResetRequested {
            user_id: u.id,
            email: email.as_str().to_string(),
            reset_url: app.link(&format!("/reset-password?token={}", token.expose())),
            expires_at: chrono::Utc::now() + ttl,
        };
        events::publish(tx, &event, ctx.request_id.as_deref()).await?;
    }
    let outcome = if user.is_some() { "sent" } else { "unknown-email" };
    let entry =
        Entry { event: "reset-request", outcome, user: user.map(|u| u.id), email: Some(email.as_str()) };
    audit::record(&mut *tx, ctx, entry).await?;
    Ok(())
}

/// Sets a new password with a reset token, ends every session, and activates a pending
/// account (the link proved the address).
#[utoipa::path(post, path = "/password/reset/confirm", tag = "passwords", request_body = ConfirmResetRequest, responses(
    (status = 200, body = Done),
    (status = 404, body = ProblemDoc, description = "no such token (token-invalid)"),
    (status = 410, body = ProblemDoc, description = "the token was used or has expired (token-used, token-expired)"),
    (status = 422, body = ProblemDoc, description = "the new password breaks a rule"),
    (status = 429, body = ProblemDoc, description = "rate limited"),
    (status = 503, body = ProblemDoc, description = "too busy hashing passwords; retry after the given seconds")))]
pub async fn confirm_reset(
    State(app): State<AppState>,
    ctx: RequestCtx,
    JsonBody(req): JsonBody<ConfirmResetRequest>,
) -> Result<Json<Done>, ApiError> {
    let token = one_time::parse(&req.token)?;
    let password = new_password(req.new_password)?;
    one_time::limit(&app, &ctx, &token, "reset-confirm").await?;
    // The token is checked before the password is hashed: a made-up token costs a lookup,
    // not an argon2 hash. It is spent below, in the transaction that sets the password.
    one_time::check(&app, &ctx, &token, Purpose::PasswordReset, "reset").await?;
    let hash = app.hasher.hash(&password).await?;
    let mut tx = app.pool.begin().await?;
    let user = one_time::spend(&mut tx, &app, &ctx, &token, Purpose::PasswordReset, "reset").await?;
    users::set_password(&mut *tx, user, &hash).await?;
    users::activate(&mut *tx, user).await?;
    tokens::retire_all(&mut *tx, user, Purpose::PasswordReset).await?;
    if let Some(u) = users::by_id(&mut *tx, user).await? {
        // The owner proved the address: whatever failed sign-ins locked is unlocked.
        limiter::clear_under(&mut *tx, &format!("login-failed:{}", u.email)).await?;
    }
    sessions::revoke_all(&mut *tx, user, None, "password-reset").await?;
    changed(&mut tx, &app, user, &ctx).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Entry { event: "reset", outcome: "success", user: Some(user), email: None },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(Done { status: "password-changed" }))
}

/// Changes the signed-in user's password, given the current one; ends their other sessions.
#[utoipa::path(post, path = "/password/change", tag = "passwords", request_body = ChangeRequest,
    security(("bearer" = [])), responses(
    (status = 200, body = Done),
    (status = 401, body = ProblemDoc),
    (status = 422, body = ProblemDoc, description = "wrong current password, or the new one breaks a rule"),
    (status = 429, body = ProblemDoc, description = "rate limited"),
    (status = 503, body = ProblemDoc, description = "too busy hashing passwords; retry after the given seconds")))]
pub async fn change(
    State(app): State<AppState>,
    ctx: RequestCtx,
    auth: Authenticated,
    JsonBody(req): JsonBody<ChangeRequest>,
) -> Result<Json<Done>, ApiError> {
    let user = users::by_id(&app.pool, auth.user).await?.ok_or(ApiError::Unauthorized)?;
    let per_user = app.config.limits.change_user;
    limiter::limit_by(&app.pool, "password-change", ctx.ip, [(Some(format!("user:{}", user.id)), per_user)])
        .await?;
    if app.hasher.verify(&req.current_password, Some(&user.password_hash)).await? == Verified::NoMatch {
        let entry = Entry {
            event: "password-change",
            outcome: "bad-current-password",
            user: Some(user.id),
            email: None,
        };
        audit::record(&app.pool, &ctx, entry).await?;
        return Err(ApiError::invalid("current_password", "is not your current password"));
    }
    let password = new_password(req.new_password)?;
    let hash = app.hasher.hash(&password).await?;
    let mut tx = app.pool.begin().await?;
    users::set_password(&mut *tx, user.id, &hash).await?;
    // A reset link sent before the change must not undo it.
    tokens::retire_all(&mut *tx, user.id, Purpose::PasswordReset).await?;
    sessions::revoke_all(&mut *tx, user.id, Some(auth.session), "password-changed").await?;
    changed(&mut tx, &app, user.id, &ctx).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Entry { event: "password-change", outcome: "success", user: Some(user.id), email: None },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(Done { status: "password-changed" }))
}

/// Tells the account's owner their password changed.
async fn changed(
    tx: &mut sqlx::PgConnection,
    app: &AppState,
    user: uuid::Uuid,
    ctx: &RequestCtx,
) -> Result<(), ApiError> {
    let email = users::by_id(&mut *tx, user).await?.map(|u| u.email).unwrap_or_default();
    let event = PasswordChanged { user_id: user, email, reset_url: app.link("/forgot-password") };
    events::publish(tx, &event, ctx.request_id.as_deref()).await?;
    Ok(())
}
