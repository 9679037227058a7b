//! Log in, the account page (profile, change password, log out, log out everywhere).

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::Response;
use axum::routing::{get, post};
use kit::problem::Slug;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{Browser, CsrfForm, Layout, NoFields, render, see_other, unavailable};
use crate::auth_client::AuthError;
use crate::session::{self, NoSession, Session};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/account", get(account))
        .route("/account/password", post(change_password))
        .route("/logout", post(logout))
        .route("/logout/all", post(logout_all))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    l: Layout,
    email: String,
    not_activated: bool,
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    activated: Option<String>,
    expired: Option<String>,
    logged_out: Option<String>,
    reset: Option<String>,
}

async fn login_page(State(app): State<AppState>, b: Browser, Query(q): Query<LoginQuery>) -> Response {
    let mut l = b.layout(&app, "Log in", false);
    l.notice = if q.activated.is_some() {
        Some("Your account is active. Log in to continue.".into())
    } else if q.logged_out.is_some() {
        Some("You are logged out.".into())
    } else if q.reset.is_some() {
        Some("Your password is changed. Log in with the new one.".into())
    } else {
        None
    };
    if q.expired.is_some() {
        l.error = Some("Your session has expired. Please log in again.".into());
    }
    let offered = session::take_login_email(&app, &b.headers).filter(|_| q.activated.is_some());
    let email = offered.as_ref().map(|(email, _)| email.clone()).unwrap_or_default();
    let mut res = b.reply(&app, render(&LoginPage { l, email, not_activated: false }));
    if let Some(Ok(clear)) = offered.map(|(_, clear)| clear.parse()) {
        res.headers_mut().append(SET_COOKIE, clear);
    }
    res
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    email: String,
    password: SecretString,
}

async fn login(State(app): State<AppState>, b: Browser, CsrfForm(f): CsrfForm<LoginForm>) -> Response {
    match app.auth.login(&f.email, f.password.expose_secret(), &b.caller).await {
        Ok(tokens) => match session::create(&app, &tokens).await {
            Ok((id, max_age)) => {
                let cookie = session::set_cookie(&app, session::session_cookie(&app), &id, max_age, "Lax");
                see_other("/account", &[cookie])
            }
            Err(e) => unavailable(&app, &b, &AuthError::Unavailable(e)),
        },
        Err(AuthError::Refused(r)) => {
            let mut l = b.layout(&app, "Log in", false);
            let not_activated = r.slug == Some(Slug::ACCOUNT_NOT_ACTIVATED);
            let status = if matches!(r.slug, Some(Slug::RATE_LIMITED | Slug::ACCOUNT_LOCKED)) {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::UNAUTHORIZED
            };
            l.error = Some(r.message);
            b.reply(&app, (status, render(&LoginPage { l, email: f.email, not_activated })))
        }
        Err(e) => unavailable(&app, &b, &e),
    }
}

/// The session, or the answer to give instead: the login page (saying so if it expired).
async fn signed_in(app: &AppState, b: &Browser) -> Result<Session, Response> {
    match session::load(app, &b.headers, &b.caller).await {
        Ok(s) => Ok(s),
        Err(NoSession::Anonymous) => Err(see_other("/login", &[])),
        Err(NoSession::Expired) => {
            let clear = session::set_cookie(app, session::session_cookie(app), "", 0, "Lax");
            Err(see_other("/login?expired=1", &[clear]))
        }
        Err(NoSession::Failed(e)) => Err(unavailable(app, b, &AuthError::Unavailable(e))),
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    l: Layout,
    /// The address in pieces, each to be followed by a line-break opportunity (before each
    /// `.` and `@`), so a narrow screen wraps it between words, not inside one.
    email: Vec<String>,
    member_since: String,
}

async fn account_page(
    app: &AppState,
    b: &Browser,
    s: &Session,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    match app.auth.me(&s.access_token, &b.caller).await {
        Ok(me) => {
            let mut l = b.layout(app, "Your account", true);
            let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
            l.notice = notice;
            l.error = error;
            let page = AccountPage {
                l,
                email: breakable(&me.email),
                member_since: me.created_at.format("%-d %B %Y").to_string(),
            };
            b.reply(app, (status, render(&page)))
        }
        Err(AuthError::Refused(_)) => {
            session::destroy(app, s).await;
            let clear = session::set_cookie(app, session::session_cookie(app), "", 0, "Lax");
            see_other("/login?expired=1", &[clear])
        }
        Err(e) => unavailable(app, b, &e),
    }
}

async fn account(State(app): State<AppState>, b: Browser) -> Response {
    match signed_in(&app, &b).await {
        Ok(s) => account_page(&app, &b, &s, None, None).await,
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
struct ChangeForm {
    current_password: SecretString,
    new_password: SecretString,
}

async fn change_password(
    State(app): State<AppState>,
    b: Browser,
    CsrfForm(f): CsrfForm<ChangeForm>,
) -> Response {
    let s = match signed_in(&app, &b).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match app
        .auth
        .change_password(
            &s.access_token,
            f.current_password.expose_secret(),
            f.new_password.expose_secret(),
            &b.caller,
        )
        .await
    {
        Ok(()) => {
            let notice = "Your password is changed. Your other sessions were logged out.".to_string();
            account_page(&app, &b, &s, Some(notice), None).await
        }
        Err(AuthError::Refused(r)) => account_page(&app, &b, &s, None, Some(r.message)).await,
        Err(e) => unavailable(&app, &b, &e),
    }
}

async fn end_session(app: &AppState, b: &Browser, everywhere: bool) -> Response {
    let clear = session::set_cookie(app, session::session_cookie(app), "", 0, "Lax");
    let s = match session::load(app, &b.headers, &b.caller).await {
        Ok(s) => s,
        Err(NoSession::Failed(error)) => {
            // Auth cannot be reached to refresh the session: end it here all the same.
            tracing::warn!(error = format!("{error:#}"), "logging out without auth");
            session::forget(app, &b.headers).await;
            return see_other("/login?logged_out=1", &[clear]);
        }
        Err(_) => return see_other("/login?logged_out=1", &[clear]),
    };
    let told = if everywhere {
        app.auth.logout_all(&s.access_token, &b.caller).await
    } else {
        app.auth.logout(&s.refresh_token, &b.caller).await
    };
    if let Err(e) = told {
        tracing::warn!(error = %e, "auth could not end the session; ending it here");
    }
    session::destroy(app, &s).await;
    see_other("/login?logged_out=1", &[clear])
}

async fn logout(State(app): State<AppState>, b: Browser, _: CsrfForm<NoFields>) -> Response {
    end_session(&app, &b, false).await
}

async fn logout_all(State(app): State<AppState>, b: Browser, _: CsrfForm<NoFields>) -> Response {
    end_session(&app, &b, true).await
}

/// `ada.lovelace@example.com` → `ada`, `.lovelace`, `@example`, `.com`.
fn breakable(email: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, c) in email.char_indices() {
        if (c == '.' || c == '@') && i > start {
            parts.push(email[start..i].to_string());
            start = i;
        }
    }
    parts.push(email[start..].to_string());
    parts
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_address_breaks_before_its_dots_and_at_sign() {
        assert_eq!(super::breakable("ada.lovelace@example.com"), ["ada", ".lovelace", "@example", ".com"]);
        assert_eq!(super::breakable("a@b"), ["a", "@b"]);
    }
}
