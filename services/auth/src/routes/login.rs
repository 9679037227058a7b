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
use crate::domain::Email;
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
    #[schema(format = Email, min_length = 3, max_length = 254)]
    pub email: String,
    #[schema(value_type = String, max_length = 256)]
    pub password: SecretString,
}

/// Signs in. A wrong password and an unknown email get the same answer in the same time;
/// a client that keeps failing on one account is locked out of it for a while, while the
/// right password from a client that has not failed is always checked.
#[utoipa::path(post, path = "/login", tag = "sessions", request_body = LoginRequest, responses(
    (status = 200, body = Tokens),
    (status = 401, body = ProblemDoc, description = "wrong email or password"),
    (status = 403, body = ProblemDoc, description = "account not activated; offers a resend"),
    (status = 429, body = ProblemDoc, description = "rate limited or account locked"),
    (status = 503, body = ProblemDoc, description = "too busy hashing passwords; retry after the given seconds")))]
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
    limiter::limit_by(&app.pool, "login", ctx.ip, [(None, limits.login_ip)]).await?;
    let failures = Failures::new(&email, &ctx);
    failures.admit(&app, &ctx, &email).await?;

    let user = users::by_email(&app.pool, &email).await?;
    let verified = app.hasher.verify(&req.password, user.as_ref().map(|u| u.password_hash.as_str())).await?;
    let (user, rehash) = match (user, verified) {
        (Some(user), Verified::Match { rehash }) => (user, rehash),
        (user, _) => {
            failures.failed(&app).await?;
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
    failures.succeeded(&app).await?;
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

/// Failed sign-ins on one account, counted per client and for the account as a whole.
///
/// An attempt is counted against its client before the password is checked (so concurrent
/// guesses cannot all pass a check made before any of them counted) and the count is cleared
/// when the password matches. A client past `SLIPWAY_AUTH_LOCKOUT` is refused. Past
/// `SLIPWAY_AUTH_LIMIT_LOGIN_EMAIL` failures from all clients together, clients that have
/// already failed on the account are refused too; a client that has not failed is never
/// refused by either, so nobody can lock an owner out of their own account.
struct Failures {
    account: String,
    client: String,
}

impl Failures {
    fn new(email: &Email, ctx: &RequestCtx) -> Self {
        let account = format!("login-failed:{email}");
        let client = format!("{account}:{}", kit::client_ip::bucket(ctx.ip));
        Self { account, client }
    }

    async fn admit(&self, app: &AppState, ctx: &RequestCtx, email: &Email) -> Result<(), ApiError> {
        let limits = app.config.limits;
        let mut refused = None;
        let mut failed_before = false;
        if let Some(lockout) = limits.lockout {
            let (hits, decision) = limiter::hit_counted(&app.pool, &self.client, lockout).await?;
            failed_before = hits > 1;
            if let Decision::Limited { retry_after } = decision {
                refused = Some(retry_after);
            }
        }
        if failed_before
            && refused.is_none()
            && let Some(rate) = limits.login_email
            && let Decision::Limited { retry_after } = limiter::peek(&app.pool, &self.account, rate).await?
        {
            refused = Some(retry_after);
        }
        let Some(retry_after) = refused else { return Ok(()) };
        let entry = Entry { event: "login", outcome: "locked", user: None, email: Some(email.as_str()) };
        audit::record(&app.pool, ctx, entry).await?;
        Err(ApiError::Locked { retry_after })
    }

    async fn failed(&self, app: &AppState) -> Result<(), ApiError> {
        if let Some(rate) = app.config.limits.login_email {
            limiter::hit(&app.pool, &self.account, rate).await?;
        }
        Ok(())
    }

    async fn succeeded(&self, app: &AppState) -> Result<(), ApiError> {
        Ok(limiter::clear(&app.pool, &self.client).await?)
    }
}
