//! Events for other services (the mailer), published on the bus in the caller's transaction:
//! an event exists exactly when the change it announces committed.

use serde_json::Value;
use sqlx::PgConnection;

use crate::error::ApiError;

/// The topics auth publishes.
pub mod topic {
    /// A new or pending account needs its activation email: `{user_id, email, activation_url, expires_at}`.
    pub const ACTIVATION_REQUESTED: &str = "auth.activation_requested";
    /// Someone tried to sign up with an active account's address: `{user_id, email, login_url, reset_url}`.
    pub const SIGNUP_EXISTING: &str = "auth.signup_existing_account";
    /// A password reset was asked for: `{user_id, email, reset_url, expires_at}`.
    pub const PASSWORD_RESET_REQUESTED: &str = "auth.password_reset_requested";
    /// A password was changed or reset: `{user_id, email, reset_url}`.
    pub const PASSWORD_CHANGED: &str = "auth.password_changed";
}

pub async fn publish(
    conn: &mut PgConnection,
    topic: &str,
    payload: Value,
    request_id: Option<&str>,
) -> Result<(), ApiError> {
    let event = bus::Publish::new(topic, payload).request_id(request_id);
    bus::pg::publish(conn, &event)
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("publishing an event")))?;
    Ok(())
}
