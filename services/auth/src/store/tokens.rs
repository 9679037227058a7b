//! Activation and password-reset tokens: single use, one purpose, one user, an expiry.

use std::time::Duration;

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::domain::{Purpose, SecretToken, TokenHasher};

/// Why a token was refused, or whose it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumed {
    User(Uuid),
    AlreadyUsed,
    Expired,
    Invalid,
}

pub async fn create(
    db: impl PgExecutor<'_>,
    hasher: &TokenHasher,
    user: Uuid,
    purpose: Purpose,
    ttl: Duration,
) -> sqlx::Result<SecretToken> {
    let token = SecretToken::generate();
    sqlx::query(
        "INSERT INTO one_time_tokens (hash, user_id, purpose, expires_at) \
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
    )
    .bind(hasher.hash(&token))
    .bind(user)
    .bind(purpose.as_str())
    .bind(ttl.as_secs_f64())
    .execute(db)
    .await?;
    Ok(token)
}

/// Consumes a token atomically: of two concurrent attempts, exactly one gets the user.
pub async fn consume(
    tx: &mut sqlx::PgConnection,
    hasher: &TokenHasher,
    token: &SecretToken,
    purpose: Purpose,
) -> sqlx::Result<Consumed> {
    let hash = hasher.hash(token);
    let user: Option<Uuid> = sqlx::query_scalar(
        "UPDATE one_time_tokens SET consumed_at = now() \
         WHERE hash = $1 AND purpose = $2 AND consumed_at IS NULL AND expires_at > now() RETURNING user_id",
    )
    .bind(&hash)
    .bind(purpose.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    match user {
        Some(user) => Ok(Consumed::User(user)),
        None => peek(tx, hasher, token, purpose).await,
    }
}

/// What `consume` would answer, without spending the token: a cheap indexed lookup, made
/// before any expensive work a request asks for (hashing its new password).
pub async fn peek(
    db: impl PgExecutor<'_>,
    hasher: &TokenHasher,
    token: &SecretToken,
    purpose: Purpose,
) -> sqlx::Result<Consumed> {
    let row: Option<(Uuid, bool, bool)> = sqlx::query_as(
        "SELECT user_id, consumed_at IS NOT NULL, expires_at <= now() FROM one_time_tokens \
         WHERE hash = $1 AND purpose = $2",
    )
    .bind(hasher.hash(token))
    .bind(purpose.as_str())
    .fetch_optional(db)
    .await?;
    Ok(match row {
        Some((_, true, _)) => Consumed::AlreadyUsed,
        Some((_, false, true)) => Consumed::Expired,
        Some((user, false, false)) => Consumed::User(user),
        None => Consumed::Invalid,
    })
}

/// Retires a user's outstanding tokens of one purpose (after one of them was used).
pub async fn retire_all(db: impl PgExecutor<'_>, user: Uuid, purpose: Purpose) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE one_time_tokens SET consumed_at = now() WHERE user_id = $1 AND purpose = $2 AND consumed_at IS NULL",
    )
    .bind(user)
    .bind(purpose.as_str())
    .execute(db)
    .await?;
    Ok(())
}
