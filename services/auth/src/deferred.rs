//! Auth's own worker (group `auth`) for the requests `queue` took: it looks the address up,
//! sends what is due and audits it, and completes the delivery in the same transaction. So
//! the answer's timing says nothing about whether an account exists, and a request taken is
//! never lost (an instance that dies mid-work leaves the delivery to another).

use bus::{AnyBus, Delivery, Handled, Handler, HandlerError};

use crate::context::RequestCtx;
use crate::domain::Email;
use crate::queue::{Wanted, topic};
use crate::routes::{password, signup};
use crate::state::AppState;

/// Does the queued work.
#[derive(Debug, Clone)]
pub struct Deferred {
    pub app: AppState,
    /// Where the requests come from, for completing one in the work's own transaction.
    pub bus: AnyBus,
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
        // Fenced out, or done by an earlier attempt: what this one wrote is rolled back, so a
        // request is never answered twice.
        if self.bus.complete_in(&mut tx, delivery).await.map_err(retry)? {
            tx.commit().await.map_err(retry)?;
        }
        Ok(Handled::Acknowledged)
    }
}
