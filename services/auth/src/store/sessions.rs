//! Sessions (refresh-token families) and their single-use refresh tokens.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::domain::{SecretToken, TokenHasher};

pub async fn create(
    db: impl PgExecutor<'_>,
    user: Uuid,
    ip: IpAddr,
    user_agent: Option<&str>,
) -> sqlx::Result<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO sessions (id, user_id, ip, user_agent) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(user)
        .bind(ip)
        .bind(user_agent)
        .execute(db)
        .await?;
    Ok(id)
}

/// Adds a refresh token to a session (a no-op if it is there already: a successor handed out
/// twice within the reuse grace).
pub async fn add_refresh(
    db: impl PgExecutor<'_>,
    hasher: &TokenHasher,
    session: Uuid,
    token: &SecretToken,
    ttl: Duration,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (hash, session_id, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3)) \
         ON CONFLICT (hash) DO NOTHING",
    )
    .bind(hasher.hash(token))
    .bind(session)
    .bind(ttl.as_secs_f64())
    .execute(db)
    .await?;
    Ok(())
}

/// A presented refresh token, locked for the rest of the transaction.
#[derive(Debug, sqlx::FromRow)]
pub struct Presented {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub used_at: Option<DateTime<Utc>>,
    pub expired: bool,
    pub revoked: bool,
}

pub async fn lock_refresh(tx: &mut sqlx::PgConnection, hash: &[u8]) -> sqlx::Result<Option<Presented>> {
    sqlx::query_as(
        "SELECT r.session_id, s.user_id, r.used_at, r.expires_at <= now() AS expired, s.revoked_at IS NOT NULL AS revoked \
         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.hash = $1 FOR UPDATE OF r",
    )
    .bind(hash)
    .fetch_optional(tx)
    .await
}

pub async fn mark_used(db: impl PgExecutor<'_>, hash: &[u8]) -> sqlx::Result<()> {
    sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE hash = $1").bind(hash).execute(db).await?;
    Ok(())
}

/// The session a refresh token belongs to, used or not.
pub async fn of_refresh(db: impl PgExecutor<'_>, hash: &[u8]) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("SELECT session_id FROM refresh_tokens WHERE hash = $1")
        .bind(hash)
        .fetch_optional(db)
        .await
}

pub async fn revoke(db: impl PgExecutor<'_>, session: Uuid, reason: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(session)
    .bind(reason)
    .execute(db)
    .await?;
    Ok(())
}

/// Revokes every live session of a user but `keep`; returns how many.
pub async fn revoke_all(
    db: impl PgExecutor<'_>,
    user: Uuid,
    keep: Option<Uuid>,
    reason: &str,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $3 \
         WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $2",
    )
    .bind(user)
    .bind(keep)
    .bind(reason)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

pub async fn is_live(db: impl PgExecutor<'_>, session: Uuid) -> sqlx::Result<bool> {
    let live: Option<bool> = sqlx::query_scalar("SELECT revoked_at IS NULL FROM sessions WHERE id = $1")
        .bind(session)
        .fetch_optional(db)
        .await?;
    Ok(live == Some(true))
}
