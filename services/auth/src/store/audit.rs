//! The audit trail: every auth event with time, user, client IP, user agent and outcome.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::context::RequestCtx;

/// One entry. `event` names the flow (`login`, `refresh`, …); `outcome` what happened.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub event: &'a str,
    pub outcome: &'a str,
    pub user: Option<Uuid>,
    pub email: Option<&'a str>,
}

pub async fn record(db: impl PgExecutor<'_>, ctx: &RequestCtx, entry: Entry<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (event, outcome, user_id, email, ip, user_agent, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(entry.event)
    .bind(entry.outcome)
    .bind(entry.user)
    .bind(entry.email)
    .bind(ctx.ip)
    .bind(ctx.user_agent.as_deref())
    .bind(ctx.request_id.as_deref())
    .execute(db)
    .await?;
    tracing::info!(event = entry.event, outcome = entry.outcome, user_id = ?entry.user, "audit");
    Ok(())
}
