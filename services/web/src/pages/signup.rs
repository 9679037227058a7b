//! Sign up, "check your email", activation (a page with a button; only the POST activates, so
//! link scanners cannot spend the token), and resending the link.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{Browser, CsrfForm, Layout, render, see_other, unavailable};
use crate::auth_client::AuthError;
use crate::session;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/signup", get(signup_page).post(signup))
        .route("/check-email", get(check_email))
        .route("/activate", get(activate_page).post(activate))
        .route("/activation/resend", get(resend_page).post(resend))
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    l: Layout,
    email: String,
}

#[derive(Debug, Deserialize)]
struct SignupForm {
    email: String,
    password: SecretString,
}

async fn signup_page(State(app): State<AppState>, b: Browser) -> Response {
    b.reply(&app, render(&SignupPage { l: b.layout(&app, "Sign up", false), email: String::new() }))
}

async fn signup(State(app): State<AppState>, b: Browser, CsrfForm(f): CsrfForm<SignupForm>) -> Response {
    match app.auth.signup(&f.email, f.password.expose_secret(), &b.caller).await {
        Ok(()) => see_other("/check-email", &[]),
        Err(AuthError::Refused(r)) => {
            let mut l = b.layout(&app, "Sign up", false);
            l.error = Some(r.message);
            b.reply(&app, (StatusCode::UNPROCESSABLE_ENTITY, render(&SignupPage { l, email: f.email })))
        }
        Err(e) => unavailable(&app, &b, &e),
    }
}

#[derive(Template)]
#[template(path = "check_email.html")]
struct CheckEmail {
    l: Layout,
}

async fn check_email(State(app): State<AppState>, b: Browser) -> Response {
    b.reply(&app, render(&CheckEmail { l: b.layout(&app, "Check your email", false) }))
}

#[derive(Template)]
#[template(path = "activate.html")]
struct ActivatePage {
    l: Layout,
    token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    pub token: Option<String>,
}

async fn activate_page(State(app): State<AppState>, b: Browser, Query(q): Query<TokenQuery>) -> Response {
    b.reply(&app, render(&ActivatePage { l: b.layout(&app, "Activate", false), token: q.token }))
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    token: SecretString,
}

async fn activate(State(app): State<AppState>, b: Browser, CsrfForm(f): CsrfForm<TokenForm>) -> Response {
    match app.auth.activate(f.token.expose_secret(), &b.caller).await {
        Ok(email) => see_other("/login?activated=1", &[session::login_email_cookie(&app, &email)]),
        Err(AuthError::Refused(r)) => {
            let mut l = b.layout(&app, "Activate", false);
            l.error = Some(r.message);
            b.reply(&app, (StatusCode::BAD_REQUEST, render(&ActivatePage { l, token: None })))
        }
        Err(e) => unavailable(&app, &b, &e),
    }
}

#[derive(Template)]
#[template(path = "resend.html")]
struct ResendPage {
    l: Layout,
    email: String,
}

#[derive(Debug, Deserialize)]
struct EmailForm {
    email: String,
}

async fn resend_page(State(app): State<AppState>, b: Browser) -> Response {
    b.reply(&app, render(&ResendPage { l: b.layout(&app, "Resend the link", false), email: String::new() }))
}

async fn resend(State(app): State<AppState>, b: Browser, CsrfForm(f): CsrfForm<EmailForm>) -> Response {
    match app.auth.resend(&f.email, &b.caller).await {
        Ok(()) => see_other("/check-email", &[]),
        Err(AuthError::Refused(r)) => {
            let mut l = b.layout(&app, "Resend the link", false);
            l.error = Some(r.message);
            b.reply(&app, (StatusCode::UNPROCESSABLE_ENTITY, render(&ResendPage { l, email: f.email })))
        }
        Err(e) => unavailable(&app, &b, &e),
    }
}
