//! Dev only: the mailer's dev mailbox, read from the mailer's API (never its tables), with
//! the links in each email made clickable. Served per `SLIPWAY_WEB_DEV_MAILBOX`: by default
//! only to a visitor on this machine, since it shows everyone's activation and reset links.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::{Browser, Layout, render, unavailable};
use crate::auth_client::AuthError;
use crate::config::DevMailbox;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
struct Mail {
    recipient: String,
    subject: String,
    text_body: String,
    received_at: chrono::DateTime<chrono::Utc>,
}

pub struct Shown {
    pub recipient: String,
    pub subject: String,
    pub text: String,
    pub received: String,
    pub links: Vec<String>,
}

#[derive(Template)]
#[template(path = "devmail.html")]
struct DevMail {
    l: Layout,
    mails: Vec<Shown>,
}

pub async fn page(State(app): State<AppState>, b: Browser) -> Response {
    if app.config.dev_mailbox == DevMailbox::Local && !b.caller.client.is_loopback() {
        tracing::info!(client = %b.caller.client, "dev mailbox refused: not a local visitor");
        return super::not_found(State(app), b).await;
    }
    let url = format!("{}/dev/mail.json", app.config.mailer_url);
    let fetched = async { app.http.get(&url).send().await?.error_for_status()?.json::<Vec<Mail>>().await };
    let mails = match fetched.await {
        Ok(m) => m,
        Err(e) => {
            return unavailable(
                &app,
                &b,
                &AuthError::Unavailable(anyhow::Error::new(e).context("reading the dev mailbox")),
            );
        }
    };
    let mails = mails
        .into_iter()
        .map(|m| Shown {
            links: m
                .text_body
                .split_whitespace()
                .filter(|w| w.starts_with("http"))
                .map(str::to_string)
                .collect(),
            recipient: m.recipient,
            subject: m.subject,
            text: m.text_body,
            received: m.received_at.format("%H:%M:%S").to_string(),
        })
        .collect();
    b.reply(&app, render(&DevMail { l: b.layout(&app, "Dev mailbox", false), mails }))
}
