//! Requests answered before they are worked on: a password reset or an activation resend is
//! queued on the bus (one insert, the same for every address) and answered 202; `deferred`,
//! auth's own worker, does the work. Topics, payload and the enqueueing live here so the
//! routes that queue and the worker that reads share them without depending on each other.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::context::RequestCtx;
use crate::domain::Email;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::events;

/// Auth's own topics: work it queued for itself.
pub mod topic {
    /// `{email, ip, user_agent}`: someone asked for a password reset link.
    pub const RESET_WANTED: &str = "auth.reset_wanted";
    /// `{email, ip, user_agent}`: someone asked for a new activation link.
    pub const RESEND_WANTED: &str = "auth.resend_wanted";
}

pub const TOPICS: &[&str] = &[topic::RESET_WANTED, topic::RESEND_WANTED];

/// The consumer group every auth instance joins.
pub const GROUP: &str = "auth";

#[derive(Debug, Serialize, Deserialize)]
pub struct Wanted {
    pub email: String,
    pub ip: IpAddr,
    pub user_agent: Option<String>,
}

/// Queues the work of `topic` for `email` (the request id travels in the message's headers).
pub async fn enqueue(app: &AppState, topic: &str, email: &Email, ctx: &RequestCtx) -> Result<(), ApiError> {
    let wanted = Wanted { email: email.as_str().to_string(), ip: ctx.ip, user_agent: ctx.user_agent.clone() };
    let payload = serde_json::to_value(&wanted).map_err(|e| ApiError::Internal(e.into()))?;
    let mut conn = app.pool.acquire().await?;
    events::publish_value(&mut conn, topic, payload, ctx.request_id.as_deref()).await
}
