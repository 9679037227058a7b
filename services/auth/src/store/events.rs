//! Events for other services (the mailer), published on the bus in the caller's transaction:
//! an event exists exactly when the change it announces committed.

use sqlx::PgConnection;

use crate::error::ApiError;

/// Publishes `event` on its topic (the payload types are the `events` crate's, which the
/// consumers read too).
pub async fn publish<E: events::Event>(
    conn: &mut PgConnection,
    event: &E,
    request_id: Option<&str>,
) -> Result<(), ApiError> {
    let payload = serde_json::to_value(event).map_err(|e| ApiError::Internal(e.into()))?;
    publish_value(conn, E::TOPIC, payload, request_id).await
}

/// Publishes a payload on a topic of auth's own (work it queues for itself: `deferred`).
pub async fn publish_value(
    conn: &mut PgConnection,
    topic: &str,
    payload: serde_json::Value,
    request_id: Option<&str>,
) -> Result<(), ApiError> {
    let event = bus::Publish::new(topic, payload).request_id(request_id);
    bus::pg::publish(conn, &event)
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("publishing an event")))?;
    Ok(())
}
