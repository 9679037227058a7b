//! Retention: what auth keeps, and for how long. Runs hourly in every instance (each delete is
//! idempotent, so instances racing each other only repeat work).
//!
//! - rate-limit counters: two days after their window opened;
//! - accounts never activated: once every link sent for them has expired (and at least the
//!   activation TTL after signup), so an address signed up for by someone else is freed;
//! - activation and reset tokens: seven days after they were spent or expired;
//! - refresh tokens: a day after they expired; sessions: 30 days after they were revoked, or
//!   once their last refresh token is gone;
//! - audit events: `SLIPWAY_AUTH_AUDIT_RETENTION` (default 365 days).

use std::time::Duration;

use sqlx::PgPool;

use crate::Config;
use crate::store::{limiter, users};

/// What one sweep removed, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub rate_limits: u64,
    pub pending_users: u64,
    pub one_time_tokens: u64,
    pub refresh_tokens: u64,
    pub sessions: u64,
    pub audit_events: u64,
}

/// Runs one sweep.
pub async fn sweep(pool: &PgPool, config: &Config) -> sqlx::Result<Swept> {
    let rate_limits = limiter::purge(pool).await?;
    let pending_users = users::purge_pending(pool, config.sessions.activation_ttl).await?;
    let one_time_tokens = delete(
        pool,
        "DELETE FROM one_time_tokens WHERE coalesce(consumed_at, expires_at) < now() - interval '7 days'",
    )
    .await?;
    let refresh_tokens =
        delete(pool, "DELETE FROM refresh_tokens WHERE expires_at < now() - interval '1 day'").await?;
    let sessions = delete(
        pool,
        "DELETE FROM sessions s WHERE revoked_at < now() - interval '30 days' \
         OR (created_at < now() - interval '1 day' \
             AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.session_id = s.id))",
    )
    .await?;
    let audit_events = sqlx::query("DELETE FROM audit_events WHERE at < now() - make_interval(secs => $1)")
        .bind(config.audit_retention.as_secs_f64())
        .execute(pool)
        .await?
        .rows_affected();
    Ok(Swept { rate_limits, pending_users, one_time_tokens, refresh_tokens, sessions, audit_events })
}

async fn delete(pool: &PgPool, sql: &'static str) -> sqlx::Result<u64> {
    Ok(sqlx::query(sql).execute(pool).await?.rows_affected())
}

/// Sweeps every `every`, logging what went.
pub async fn run(pool: PgPool, config: Config, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match sweep(&pool, &config).await {
            Ok(swept) if swept != Swept::default() => tracing::info!(?swept, "retention sweep"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "retention sweep failed"),
        }
    }
}
