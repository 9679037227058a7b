//! Rate limits kept in Postgres, so every instance of auth counts against the same limit.
//! Fixed windows: the first hit opens a window of `per`; hits beyond `max` in it are refused
//! until it closes.

use std::net::IpAddr;

use kit::config::Rate;
use sqlx::{PgExecutor, PgPool};

use crate::domain::Email;
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Limited { retry_after: u64 },
}

/// Counts a hit on `key` and decides.
pub async fn hit(pool: &PgPool, key: &str, rate: Rate) -> sqlx::Result<Decision> {
    Ok(hit_counted(pool, key, rate).await?.1)
}

/// Counts a hit on `key`; returns the hits in the window, this one included, and the decision.
pub async fn hit_counted(pool: &PgPool, key: &str, rate: Rate) -> sqlx::Result<(u32, Decision)> {
    let (hits, remaining): (i32, f64) = sqlx::query_as(
        "INSERT INTO rate_limits AS r (key, window_start, hits) VALUES ($1, now(), 1) \
         ON CONFLICT (key) DO UPDATE SET \
           window_start = CASE WHEN r.window_start + make_interval(secs => $2) <= now() THEN now() ELSE r.window_start END, \
           hits = CASE WHEN r.window_start + make_interval(secs => $2) <= now() THEN 1 ELSE r.hits + 1 END \
         RETURNING hits, extract(epoch FROM r.window_start + make_interval(secs => $2) - now())::float8",
    )
    .bind(key)
    .bind(rate.per.as_secs_f64())
    .fetch_one(pool)
    .await?;
    Ok((u32::try_from(hits).unwrap_or(0), decide(hits, remaining, rate.max)))
}

/// Decides without counting: limited once `max` hits are in the current window.
pub async fn peek(pool: &PgPool, key: &str, rate: Rate) -> sqlx::Result<Decision> {
    let row: Option<(i32, f64)> = sqlx::query_as(
        "SELECT hits, extract(epoch FROM window_start + make_interval(secs => $2) - now())::float8 \
         FROM rate_limits WHERE key = $1 AND window_start + make_interval(secs => $2) > now()",
    )
    .bind(key)
    .bind(rate.per.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    Ok(row.map_or(Decision::Allowed, |(hits, remaining)| decide(hits + 1, remaining, rate.max)))
}

pub async fn clear(db: impl PgExecutor<'_>, key: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM rate_limits WHERE key = $1").bind(key).execute(db).await?;
    Ok(())
}

/// Clears `key` and every key under it (`key:…`).
pub async fn clear_under(db: impl PgExecutor<'_>, key: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM rate_limits WHERE key = $1 OR starts_with(key, $1 || ':')")
        .bind(key)
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes counters whose window closed long ago, so the table stays small.
pub async fn purge(pool: &PgPool) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM rate_limits WHERE window_start < now() - interval '2 days'")
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

fn decide(hits: i32, remaining_secs: f64, max: u32) -> Decision {
    if u32::try_from(hits).unwrap_or(0) <= max {
        Decision::Allowed
    } else {
        Decision::Limited { retry_after: remaining_secs.ceil().max(1.0) as u64 }
    }
}

/// Counts a request from `ip` against a per-IP and a per-email limit of one flow; refuses with
/// 429 if either is exceeded.
pub async fn limit(
    pool: &PgPool,
    flow: &str,
    ip: IpAddr,
    email: &Email,
    per_ip: Option<Rate>,
    per_email: Option<Rate>,
) -> Result<(), ApiError> {
    limit_by(pool, flow, ip, [(None, per_ip), (Some(format!("email:{email}")), per_email)]).await
}

/// Counts a request from `ip` against limits of one flow, each keyed by the client's address
/// (`None`) or by a given key; refuses with 429 if any is exceeded.
pub async fn limit_by<const N: usize>(
    pool: &PgPool,
    flow: &str,
    ip: IpAddr,
    checks: [(Option<String>, Option<Rate>); N],
) -> Result<(), ApiError> {
    let mut retry_after = None;
    for (key, rate) in checks {
        let Some(rate) = rate else { continue };
        let key = match key {
            Some(key) => format!("{flow}:{key}"),
            None => format!("{flow}:ip:{}", kit::client_ip::bucket(ip)),
        };
        if let Decision::Limited { retry_after: s } = hit(pool, &key, rate).await? {
            retry_after = Some(retry_after.map_or(s, |r: u64| r.max(s)));
        }
    }
    match retry_after {
        Some(retry_after) => {
            tracing::info!(flow, %ip, retry_after, "rate limited");
            Err(ApiError::RateLimited { retry_after })
        }
        None => Ok(()),
    }
}
