//! Spending the one-time tokens of emailed links (activation, password reset).

use sqlx::PgConnection;
use uuid::Uuid;

use crate::context::RequestCtx;
use crate::domain::{Purpose, SecretToken};
use crate::error::{ApiError, TokenProblem};
use crate::state::AppState;
use crate::store::audit::{self, Entry};
use crate::store::limiter;
use crate::store::tokens::{self, Consumed};

/// A token as presented; anything not shaped like one of ours is refused before any lookup.
pub fn parse(raw: &str) -> Result<SecretToken, ApiError> {
    SecretToken::parse(raw).ok_or(ApiError::Token(TokenProblem::Invalid))
}

/// Counts a presented token against the per-client and the per-token limits of its flow, so
/// neither guessing tokens nor replaying one costs more than a few lookups.
pub async fn limit(
    app: &AppState,
    ctx: &RequestCtx,
    token: &SecretToken,
    flow: &str,
) -> Result<(), ApiError> {
    let limits = app.config.limits;
    let token_key = format!("token:{}", hex(&app.tokens.hash(token)[..12]));
    limiter::limit_by(
        &app.pool,
        flow,
        ctx.ip,
        [(None, limits.confirm_ip), (Some(token_key), limits.confirm_token)],
    )
    .await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a token without spending it, before expensive work; a refusal is audited and
/// answered like `spend`'s.
pub async fn check(
    app: &AppState,
    ctx: &RequestCtx,
    token: &SecretToken,
    purpose: Purpose,
    event: &'static str,
) -> Result<Uuid, ApiError> {
    let found = tokens::peek(&app.pool, &app.tokens, token, purpose).await?;
    refuse(app, ctx, found, event).await
}

/// Spends a token in the caller's transaction and returns its user; a refusal is audited under
/// `event` and answered with its reason (invalid, used, expired).
pub async fn spend(
    tx: &mut PgConnection,
    app: &AppState,
    ctx: &RequestCtx,
    token: &SecretToken,
    purpose: Purpose,
    event: &'static str,
) -> Result<Uuid, ApiError> {
    let found = tokens::consume(tx, &app.tokens, token, purpose).await?;
    refuse(app, ctx, found, event).await
}

async fn refuse(
    app: &AppState,
    ctx: &RequestCtx,
    found: Consumed,
    event: &'static str,
) -> Result<Uuid, ApiError> {
    let problem = match found {
        Consumed::User(user) => return Ok(user),
        Consumed::AlreadyUsed => TokenProblem::Used,
        Consumed::Expired => TokenProblem::Expired,
        Consumed::Invalid => TokenProblem::Invalid,
    };
    let outcome = match problem {
        TokenProblem::Invalid => "token-invalid",
        TokenProblem::Used => "token-used",
        TokenProblem::Expired => "token-expired",
    };
    audit::record(&app.pool, ctx, Entry { event, outcome, user: None, email: None }).await?;
    Err(ApiError::Token(problem))
}
