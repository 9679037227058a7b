//! Signup, activation and resending the activation email.

use ::events::{ActivationRequested, SignupExistingAccount};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kit::extract::Json as JsonBody;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Accepted, ProblemDoc, one_time};
use crate::context::RequestCtx;
use crate::domain::{Email, Password, Purpose};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::audit::{self, Entry};
use crate::store::events;
use crate::store::limiter;
use crate::store::tokens;
use crate::store::users;

pub const CHECK_EMAIL: Accepted = Accepted {
    status: "accepted",
    message: "If this address can be used, an email is on its way to it. Follow the link inside to continue.",
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    #[schema(format = Email, min_length = 3, max_length = 254)]
    pub email: String,
    #[schema(value_type = String, min_length = 8, max_length = 256)]
    pub password: SecretString,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    #[schema(format = Email, min_length = 3, max_length = 254)]
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The token from the emailed link.
    #[schema(pattern = "^[A-Za-z0-9_-]{43}$")]
    pub token: String,
}

pub fn email(raw: &str) -> Result<Email, ApiError> {
    Email::parse(raw).map_err(|expected| ApiError::invalid("email", format!("expected {expected}")))
}

/// Creates an account pending activation and emails the link. The answer is the same whether
/// or not the address is registered; an active account's owner is told someone tried.
#[utoipa::path(post, path = "/signup", tag = "accounts", request_body = SignupRequest, responses(
    (status = 202, body = Accepted),
    (status = 422, body = ProblemDoc, description = "invalid email or password"),
    (status = 429, body = ProblemDoc, description = "rate limited")))]
pub async fn signup(
    State(app): State<AppState>,
    ctx: RequestCtx,
    JsonBody(req): JsonBody<SignupRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let email = email(&req.email)?;
    let password = Password::parse(req.password).map_err(|e| ApiError::invalid("password", e.to_string()))?;
    let limits = app.config.limits;
    limiter::limit(&app.pool, "signup", ctx.ip, &email, limits.signup_ip, limits.signup_email).await?;
    // Hash whatever happens next, so a taken address answers in the same time.
    let hash = app.hasher.hash(&password).await?;

    let mut tx = app.pool.begin().await?;
    let (outcome, user) = match users::insert(&mut *tx, &email, &hash).await? {
        Some(id) => {
            send_activation(&mut tx, &app, id, &email, &ctx).await?;
            ("created", id)
        }
        None => {
            let existing = users::by_email(&mut *tx, &email)
                .await?
                .ok_or_else(|| anyhow::anyhow!("taken address vanished"))?;
            if existing.activated_at.is_some() {
                let event = SignupExistingAccount {
                    user_id: existing.id,
                    email: email.as_str().to_string(),
                    login_url: app.link("/login"),
                    reset_url: app.link("/forgot-password"),
                };
                events::publish(&mut tx, &event, ctx.request_id.as_deref()).await?;
                ("existing-active", existing.id)
            } else {
                // Until someone proves the address, the latest signup's password is the one
                // that counts, and only its link works: an earlier signup (perhaps by someone
                // else) can no longer activate the account with a password it chose.
                users::set_password(&mut *tx, existing.id, &hash).await?;
                tokens::retire_all(&mut *tx, existing.id, Purpose::Activation).await?;
                send_activation(&mut tx, &app, existing.id, &email, &ctx).await?;
                ("existing-pending", existing.id)
            }
        }
    };
    let entry = Entry { event: "signup", outcome, user: Some(user), email: Some(email.as_str()) };
    audit::record(&mut *tx, &ctx, entry).await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(CHECK_EMAIL)))
}

/// A new activation token and the event that emails its link, in the caller's transaction.
async fn send_activation(
    tx: &mut PgConnection,
    app: &AppState,
    user: Uuid,
    email: &Email,
    ctx: &RequestCtx,
) -> Result<(), ApiError> {
    let ttl = app.config.sessions.activation_ttl;
    let token = tokens::create(&mut *tx, &app.tokens, user, Purpose::Activation, ttl).await?;
    let event = ActivationRequested {
        user_id: user,
        email: email.as_str().to_string(),
        activation_url: app.link(&format!("/activate?token={}", token.expose())),
        expires_at: chrono::Utc::now() + ttl,
    };
    events::publish(tx, &event, ctx.request_id.as_deref()).await?;
    Ok(())
}

/// An activated account: the address it was activated for, so the site can offer it at login.
#[derive(Debug, Serialize, ToSchema)]
pub struct Activated {
    pub status: &'static str,
    pub email: String,
}

/// Activates the account a token was sent for. Only this POST consumes the token, so a mail
/// scanner fetching the link cannot.
#[utoipa::path(post, path = "/activation", tag = "accounts", request_body = TokenRequest, responses(
    (status = 200, body = Activated),
    (status = 404, body = ProblemDoc, description = "no such token (token-invalid)"),
    (status = 410, body = ProblemDoc, description = "the token was used or has expired (token-used, token-expired)"),
    (status = 429, body = ProblemDoc, description = "rate limited")))]
pub async fn activate(
    State(app): State<AppState>,
    ctx: RequestCtx,
    JsonBody(req): JsonBody<TokenRequest>,
) -> Result<Json<Activated>, ApiError> {
    let token = one_time::parse(&req.token)?;
    one_time::limit(&app, &ctx, &token, "activation").await?;
    let mut tx = app.pool.begin().await?;
    let user = one_time::spend(&mut tx, &app, &ctx, &token, Purpose::Activation, "activation").await?;
    users::activate(&mut *tx, user).await?;
    tokens::retire_all(&mut *tx, user, Purpose::Activation).await?;
    audit::record(
        &mut *tx,
        &ctx,
        Entry { event: "activation", outcome: "success", user: Some(user), email: None },
    )
    .await?;
    let email = users::by_id(&mut *tx, user).await?.map(|u| u.email).unwrap_or_default();
    tx.commit().await?;
    Ok(Json(Activated { status: "activated", email }))
}

/// Sends a new activation email to a pending account; the same answer, after the same work,
/// for any address (queued, then answered).
#[utoipa::path(post, path = "/activation/resend", tag = "accounts", request_body = EmailRequest, responses(
    (status = 202, body = Accepted),
    (status = 429, body = ProblemDoc, description = "rate limited")))]
pub async fn resend(
    State(app): State<AppState>,
    ctx: RequestCtx,
    JsonBody(req): JsonBody<EmailRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let email = email(&req.email)?;
    let limits = app.config.limits;
    limiter::limit(&app.pool, "resend", ctx.ip, &email, limits.resend_ip, limits.resend_email).await?;
    crate::queue::enqueue(&app, crate::queue::topic::RESEND_WANTED, &email, &ctx).await?;
    Ok((StatusCode::ACCEPTED, Json(CHECK_EMAIL)))
}

/// A resend request's work, done by the deferred worker after the answer: a new link for a
/// pending account, an audit entry either way, in the caller's transaction.
pub async fn send_resend(
    tx: &mut PgConnection,
    app: &AppState,
    email: &Email,
    ctx: &RequestCtx,
) -> Result<(), ApiError> {
    let user = users::by_email(&mut *tx, email).await?;
    let outcome = match &user {
        Some(u) if u.activated_at.is_none() => {
            send_activation(tx, app, u.id, email, ctx).await?;
            "sent"
        }
        Some(_) => "already-active",
        None => "unknown-email",
    };
    let entry =
        Entry { event: "activation-resend", outcome, user: user.map(|u| u.id), email: Some(email.as_str()) };
    audit::record(&mut *tx, ctx, entry).await?;
    Ok(())
}
