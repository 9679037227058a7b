//! Events for other services (the mailer), written in the caller's transaction so an event
//! exists exactly when the change it announces committed. The bus will deliver them.

use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

/// The topics auth publishes.
pub mod topic {
    /// A new or pending account needs its activation email: `{user_id, email, activation_url, expires_at}`.
    pub const ACTIVATION_REQUESTED: &str = "auth.activation_requested";
    /// Someone tried to sign up with an active account's address: `{user_id, email, login_url, reset_url}`.
    pub const SIGNUP_EXISTING: &str = "auth.signup_existing_account";
    /// A password reset was asked for: `{user_id, email, reset_url, expires_at}`.
    pub const PASSWORD_RESET_REQUESTED: &str = "auth.password_reset_requested";
    /// A password was changed or reset: `{user_id, email}`.
    pub const PASSWORD_CHANGED: &str = "auth.password_changed";
}

pub async fn publish(
    db: impl PgExecutor<'_>,
    topic: &str,
    payload: Value,
    request_id: Option<&str>,
) -> sqlx::Result<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO outbox (id, topic, payload, request_id) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(topic)
        .bind(payload)
        .bind(request_id)
        .execute(db)
        .await?;
    Ok(id)
}
