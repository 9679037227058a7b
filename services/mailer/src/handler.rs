//! Handles one bus event: render, send (or keep in the dev mailbox), record — once.

use std::sync::Arc;

use anyhow::Context;
use bus::{AnyBus, Delivery, Handled, Handler, HandlerError};
use lettre::Message;
use lettre::message::MultiPart;
use sqlx::{PgExecutor, PgPool};

use crate::config::{Config, Transport};
use crate::smtp::{self, Sent};
use crate::templates::{Rendered, Templates};

#[derive(Debug, Clone)]
pub struct MailHandler {
    pub pool: PgPool,
    /// The bus the deliveries come from, for completing one in the mailbox's transaction.
    pub bus: AnyBus,
    pub templates: Arc<Templates>,
    pub config: Arc<Config>,
}

/// Records that an event's email is sent; false if it already was.
async fn record(db: impl PgExecutor<'_>, d: &Delivery, to: &str, transport: &str) -> sqlx::Result<bool> {
    let inserted: Option<bool> = sqlx::query_scalar(
        "INSERT INTO sent (message_id, topic, recipient, transport) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (message_id) DO NOTHING RETURNING true",
    )
    .bind(d.id)
    .bind(&d.topic)
    .bind(to)
    .bind(transport)
    .fetch_optional(db)
    .await?;
    Ok(inserted.is_some())
}

fn retry(e: impl Into<anyhow::Error>) -> HandlerError {
    HandlerError::Retry(e.into())
}

impl Handler for MailHandler {
    async fn handle(&self, d: &Delivery) -> Result<Handled, HandlerError> {
        let already: Option<bool> = sqlx::query_scalar("SELECT true FROM sent WHERE message_id = $1")
            .bind(d.id)
            .fetch_optional(&self.pool)
            .await
            .map_err(retry)?;
        if already.is_some() {
            tracing::info!("already sent; acknowledging the redelivery");
            return Ok(Handled::Done);
        }
        let (to, email) =
            self.templates.render(&d.topic, &d.payload).map_err(|e| HandlerError::Permanent(e.into()))?;
        match self.config.transport {
            Transport::Mailbox => self.keep(d, &to, &email).await,
            Transport::Smtp => self.send(d, &to, &email).await,
        }
    }
}

impl MailHandler {
    /// Dev: keeps the email in the mailbox; record and acknowledgement in one transaction.
    async fn keep(&self, d: &Delivery, to: &str, email: &Rendered) -> Result<Handled, HandlerError> {
        let mut tx = self.pool.begin().await.map_err(retry)?;
        if record(&mut *tx, d, to, "mailbox").await.map_err(retry)? {
            sqlx::query(
                "INSERT INTO mailbox (message_id, recipient, subject, text_body, html_body) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(d.id)
            .bind(to)
            .bind(&email.subject)
            .bind(&email.text)
            .bind(&email.html)
            .execute(&mut *tx)
            .await
            .map_err(retry)?;
        }
        if self.bus.complete_in(&mut tx, d).await.map_err(retry)? {
            tx.commit().await.map_err(retry)?;
            tracing::info!(to, subject = %email.subject, "kept in the dev mailbox");
        }
        Ok(Handled::Acknowledged)
    }

    /// Sends over SMTP, committing the record just before the end of the message.
    async fn send(&self, d: &Delivery, to: &str, email: &Rendered) -> Result<Handled, HandlerError> {
        let message = self.message(d, to, email).map_err(HandlerError::Permanent)?;
        let (pool, smtp, delivery, recipient) =
            (self.pool.clone(), self.config.smtp.clone(), d.clone(), to.to_string());
        let runtime = tokio::runtime::Handle::current();
        let sent = tokio::task::spawn_blocking(move || {
            let mut commit =
                || runtime.block_on(record(&pool, &delivery, &recipient, "smtp")).map_err(|e| e.to_string());
            smtp::send(&smtp, &message, &mut commit)
        })
        .await
        .map_err(retry)?;
        match sent {
            Ok(Sent::Delivered) => {
                tracing::info!(to, subject = %email.subject, "sent");
                Ok(Handled::Done)
            }
            Ok(Sent::ByAnotherAttempt) => {
                tracing::info!("another attempt sent it first; this copy was abandoned");
                Ok(Handled::Done)
            }
            Err(failure) => {
                if failure.committed {
                    sqlx::query("DELETE FROM sent WHERE message_id = $1")
                        .bind(d.id)
                        .execute(&self.pool)
                        .await
                        .map_err(retry)?;
                }
                let error = anyhow::anyhow!(failure.reason);
                Err(if failure.permanent {
                    HandlerError::Permanent(error)
                } else {
                    HandlerError::Retry(error)
                })
            }
        }
    }

    /// The MIME message: plain text and HTML alternatives, its Message-ID made from the event id
    /// so that any copy that slips through is recognisably the same email.
    fn message(&self, d: &Delivery, to: &str, email: &Rendered) -> anyhow::Result<Message> {
        let message_id = format!("<{}@{}>", d.id, self.config.message_id_domain());
        Message::builder()
            .from(self.config.from.parse().context("sender address")?)
            .to(to.parse().with_context(|| format!("recipient address {to:?}"))?)
            .subject(&email.subject)
            .message_id(Some(message_id))
            .multipart(MultiPart::alternative_plain_html(email.text.clone(), email.html.clone()))
            .context("building the message")
    }
}
