//! The development mailbox: emails kept in the mailer's schema instead of sent, and the
//! `/dev/mail` pages that show them (dev and test only).

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use kit::problem::Problem;
use serde::Serialize;
use sqlx::PgPool;

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Mail {
    pub id: i64,
    pub message_id: uuid::Uuid,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub received_at: chrono::DateTime<chrono::Utc>,
}

pub fn routes(pool: PgPool) -> Router {
    Router::new()
        .route("/dev/mail", get(index))
        .route("/dev/mail.json", get(list))
        .route("/dev/mail/{id}", get(show))
        .with_state(pool)
}

async fn latest(pool: &PgPool) -> sqlx::Result<Vec<Mail>> {
    sqlx::query_as("SELECT * FROM mailbox ORDER BY id DESC LIMIT 100").fetch_all(pool).await
}

async fn list(State(pool): State<PgPool>) -> Response {
    match latest(&pool).await {
        Ok(mails) => Json(mails).into_response(),
        Err(e) => internal(e),
    }
}

async fn index(State(pool): State<PgPool>) -> Response {
    let mails = match latest(&pool).await {
        Ok(m) => m,
        Err(e) => return internal(e),
    };
    let rows: String = mails
        .iter()
        .map(|m| {
            format!(
                "<li><a href=\"/dev/mail/{}\">{}</a> — to {} — {}</li>",
                m.id,
                escape(&m.subject),
                escape(&m.recipient),
                m.received_at.format("%H:%M:%S")
            )
        })
        .collect();
    let body = if rows.is_empty() { "<p>No mail yet.</p>".to_string() } else { format!("<ul>{rows}</ul>") };
    Html(format!("<!doctype html><meta charset=utf-8><title>Dev mailbox</title><h1>Dev mailbox</h1>{body}"))
        .into_response()
}

async fn show(State(pool): State<PgPool>, Path(id): Path<i64>) -> Response {
    match sqlx::query_as::<_, Mail>("SELECT * FROM mailbox WHERE id = $1")
        .bind(id)
        .fetch_optional(&pool)
        .await
    {
        Ok(Some(mail)) => Html(mail.html_body).into_response(),
        Ok(None) => Problem::not_found().into_response(),
        Err(e) => internal(e),
    }
}

fn internal(e: sqlx::Error) -> Response {
    kit::problem::log_internal(&anyhow::Error::new(e));
    Problem::internal().into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
