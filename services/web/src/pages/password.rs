//! Forgot password and the reset-password landing page.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use kit::problem::Slug;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::signup::TokenQuery;
use super::{Browser, CsrfForm, Layout, render, see_other, unavailable};
use crate::auth_client::AuthError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/forgot-password", get(forgot_page).post(forgot))
        .route("/reset-password", get(reset_page).post(reset))
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    l: Layout,
}

#[derive(Debug, Deserialize)]
struct EmailForm {
    email: String,
}

async fn forgot_page(State(app): State<AppState>, b: Browser) -> Response {
    b.reply(&app, render(&ForgotPage { l: b.layout(&app, "Forgot password", false) }))
}

async fn forgot(State(app): State<AppState>, b: Browser, CsrfForm(f): CsrfForm<EmailForm>) -> Response {
    match app.auth.request_reset(&f.email, &b.caller).await {
        Ok(()) => see_other("/check-email", &[]),
        Err(AuthError::Refused(r)) => {
            let mut l = b.layout(&app, "Forgot password", false);
            l.error = Some(r.message);
            b.reply(&app, (StatusCode::UNPROCESSABLE_ENTITY, render(&ForgotPage { l })))
        }
        Err(e) => unavailable(&app, &b, &e),
    }
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    l: Layout,
    token: Option<String>,
}

async fn reset_page(State(app): State<AppState>, b: Browser, Query(q): Query<TokenQuery>) -> Response {
    b.reply(&app, render(&ResetPage { l: b.layout(&app, "New password", false), token: q.token }))
}

#[derive(Debug, Deserialize)]
struct ResetForm {
    token: SecretString,
    new_password: SecretString,
}

async fn reset(State(app): State<AppState>, b: Browser, CsrfForm(f): CsrfForm<ResetForm>) -> Response {
    match app.auth.confirm_reset(f.token.expose_secret(), f.new_password.expose_secret(), &b.caller).await {
        Ok(()) => see_other("/login?reset=1", &[]),
        Err(AuthError::Refused(r)) => {
            let mut l = b.layout(&app, "New password", false);
            let keep = (r.slug == Some(Slug::VALIDATION)).then(|| f.token.expose_secret().to_string());
            l.error = Some(r.message);
            b.reply(&app, (StatusCode::UNPROCESSABLE_ENTITY, render(&ResetPage { l, token: keep })))
        }
        Err(e) => unavailable(&app, &b, &e),
    }
}
