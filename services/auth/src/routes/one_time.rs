//! Spending the one-time tokens of emailed links (activation, password reset).

use sqlx::PgConnection;
use uuid::Uuid;

use crate::context::RequestCtx;
use crate::domain::{Purpose, SecretToken};
use crate::error::{ApiError, TokenProblem};
use crate::state::AppState;
use crate::store::audit::{self, Entry};
use crate::store::tokens::{self, Consumed};

/// A token as presented; anything not shaped like one of ours is refused before any lookup.
pub fn parse(raw: &str) -> Result<SecretToken, ApiError> {
    SecretToken::parse(raw).ok_or(ApiError::Token(TokenProblem::Invalid))
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
    let problem = match tokens::consume(tx, &app.tokens, token, purpose).await? {
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
