//! Requests answered before they are worked on. A password reset or an activation resend is
//! queued on the bus — one insert, the same for every address — and answered 202; auth's own
//! worker (group `auth`) then looks the address up, sends what is due and audits it, and
//! completes the delivery in the same transaction. So the answer's timing says nothing about
//! whether an account exists, and a request taken is never lost (an instance that dies
//! mid-work leaves the delivery to another).

use std::net::IpAddr;

use bus::{Delivery, Handled, Handler, HandlerError};
use serde::{Deserialize, Serialize};

use crate::context::RequestCtx;
use crate::domain::Email;
use crate::error::ApiError;
use crate::routes::{password, signup};
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
struct Wanted {
    email: String,
    ip: IpAddr,
    user_agent: Option<String>,
}

/// Queues the work of `topic` for `email` (the request id travels in the message's headers).
pub async fn enqueue(app: &AppState, topic: &str, email: &Email, ctx: &RequestCtx) -> Result<(), ApiError> {
    let wanted = Wanted { email: email.as_str().to_string(), ip: ctx.ip, user_agent: ctx.user_agent.clone() };
    let payload = serde_json::to_value(&wanted).map_err(|e| ApiError::Internal(e.into()))?;
    let mut conn = app.pool.acquire().await?;
    events::publish_value(&mut conn, topic, payload, ctx.request_id.as_deref()).await
}

/// Does the queued work.
#[derive(Debug, Clone)]
pub struct Deferred {
    pub app: AppState,
}

fn retry(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Retry(anyhow::anyhow!("{e}"))
}

impl Handler for Deferred {
    async fn handle(&self, delivery: &Delivery) -> Result<Handled, HandlerError> {
        let wanted: Wanted = serde_json::from_value(delivery.payload.clone())
            .map_err(|e| HandlerError::Permanent(anyhow::anyhow!("malformed {}: {e}", delivery.topic)))?;
        let email = Email::parse(&wanted.email)
            .map_err(|e| HandlerError::Permanent(anyhow::anyhow!("malformed address: expected {e}")))?;
        let ctx = RequestCtx {
            ip: wanted.ip,
            user_agent: wanted.user_agent,
            request_id: delivery.request_id().map(str::to_string),
        };
        let mut tx = self.app.pool.begin().await.map_err(retry)?;
        let done = match delivery.topic.as_str() {
            topic::RESET_WANTED => password::send_reset(&mut tx, &self.app, &email, &ctx).await,
            topic::RESEND_WANTED => signup::send_resend(&mut tx, &self.app, &email, &ctx).await,
            other => return Err(HandlerError::Permanent(anyhow::anyhow!("auth does not handle {other}"))),
        };
        done.map_err(retry)?;
        bus::pg::complete_in(&mut tx, delivery).await.map_err(retry)?;
        tx.commit().await.map_err(retry)?;
        Ok(Handled::Acknowledged)
    }
}
