//! Accounts.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::domain::Email;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub activated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, email, password_hash, activated_at, created_at";

pub async fn by_email(db: impl PgExecutor<'_>, email: &Email) -> sqlx::Result<Option<User>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM users WHERE lower(email) = $1")))
        .bind(email.as_str())
        .fetch_optional(db)
        .await
}

pub async fn by_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<User>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM users WHERE id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Creates a pending account; `None` if the address is taken (by a concurrent signup, say).
pub async fn insert(
    db: impl PgExecutor<'_>,
    email: &Email,
    password_hash: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, $3) \
         ON CONFLICT ((lower(email))) DO NOTHING RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(email.as_str())
    .bind(password_hash)
    .fetch_optional(db)
    .await
}

/// Marks an account active; false if it already was.
pub async fn activate(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<bool> {
    let done = sqlx::query("UPDATE users SET activated_at = now() WHERE id = $1 AND activated_at IS NULL")
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_password(db: impl PgExecutor<'_>, id: Uuid, password_hash: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
        .bind(id)
        .bind(password_hash)
        .execute(db)
        .await?;
    Ok(())
}

/// Replaces a hash only if it is still the one that was verified (a rehash racing a password
/// change must not undo the change).
pub async fn upgrade_hash(pool: &PgPool, id: Uuid, old: &str, new: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2")
        .bind(id)
        .bind(old)
        .bind(new)
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes accounts never activated whose every emailed link has expired (and at least `ttl`
/// old), so an address someone signed up for without owning it is freed again.
pub async fn purge_pending(pool: &PgPool, ttl: std::time::Duration) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM users u WHERE activated_at IS NULL \
           AND created_at < now() - make_interval(secs => $1) \
           AND NOT EXISTS (SELECT 1 FROM one_time_tokens t \
                           WHERE t.user_id = u.id AND t.consumed_at IS NULL AND t.expires_at > now())",
    )
    .bind(ttl.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
