//! The site: every page and form. Pages work without JavaScript; every form POST carries a
//! CSRF token; every answer is a page in the site's style (404 and 500 too).

mod account;
mod csrf_form;
mod devmail;
mod password;
mod signup;

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use kit::client_ip::ClientIp;
use kit::request_id::RequestId;

pub use csrf_form::{CsrfForm, NoFields};

use crate::auth_client::{AuthError, Caller};
use crate::csrf::Csrf;
use crate::session;
use crate::state::AppState;

/// What the layout shows on every page.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: &'static str,
    pub site: String,
    pub signed_in: bool,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub csrf: String,
}

/// The browser asking: its cookies, its CSRF cookie (or a fresh one to set), the request id.
#[derive(Debug)]
pub struct Browser {
    pub headers: HeaderMap,
    csrf_cookie: Option<String>,
    fresh_csrf: Option<String>,
    pub caller: Caller,
}

impl FromRequestParts<AppState> for Browser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let csrf_cookie = session::cookie(&parts.headers, session::csrf_cookie(app)).map(str::to_string);
        let fresh_csrf = csrf_cookie.is_none().then(Csrf::new_cookie);
        let request_id = parts.extensions.get::<RequestId>().map_or_else(|| "-".to_string(), |r| r.0.clone());
        let Ok(ClientIp(client)) = ClientIp::from_request_parts(parts, app).await;
        let caller = Caller { request_id, client };
        Ok(Self { headers: parts.headers.clone(), csrf_cookie, fresh_csrf, caller })
    }
}

impl Browser {
    pub fn layout(&self, app: &AppState, title: &'static str, signed_in: bool) -> Layout {
        let cookie = self.csrf_cookie.as_deref().or(self.fresh_csrf.as_deref()).unwrap_or_default();
        Layout {
            title,
            site: app.config.site_name.clone(),
            signed_in,
            notice: None,
            error: None,
            csrf: app.csrf.token(cookie),
        }
    }

    /// Whether the form's token matches this browser's CSRF cookie.
    pub fn csrf_ok(&self, app: &AppState, submitted: &str) -> bool {
        app.csrf.verify(self.csrf_cookie.as_deref(), submitted)
    }

    /// Finishes a response: sets the CSRF cookie if this browser had none.
    pub fn reply(&self, app: &AppState, response: impl IntoResponse) -> Response {
        let mut response = response.into_response();
        if let Some(fresh) = &self.fresh_csrf {
            let cookie =
                session::set_cookie(app, session::csrf_cookie(app), fresh, 60 * 60 * 24 * 365, "Strict");
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(SET_COOKIE, v);
            }
        }
        response
    }

    /// The 403 page for a form whose CSRF token does not check out.
    pub fn forbidden(&self, app: &AppState) -> Response {
        let page = ErrorPage {
            l: self.layout(app, "Form expired", false),
            heading: "This form has expired",
            message: "For your safety the form was refused. Go back, reload the page and try again.",
        };
        self.reply(app, (StatusCode::FORBIDDEN, render(&page)))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub l: Layout,
    pub heading: &'static str,
    pub message: &'static str,
}

/// Renders a template, or the plain 500 page if rendering fails.
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            kit::problem::log_internal(&anyhow::Error::new(e).context("rendering a page"));
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><h1>Something went wrong</h1>"),
            )
                .into_response()
        }
    }
}

/// A 303 to `to`, with optional cookies.
pub fn see_other(to: &str, cookies: &[String]) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(LOCATION, v);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            res.headers_mut().append(SET_COOKIE, v);
        }
    }
    res
}

/// The page for auth being unreachable or failing: 503, cause logged.
pub fn unavailable(app: &AppState, browser: &Browser, error: &AuthError) -> Response {
    tracing::error!(error = format!("{:#}", anyhow::anyhow!("{error}")), "auth call failed");
    let page = ErrorPage {
        l: browser.layout(app, "Unavailable", false),
        heading: "We could not do that right now",
        message: "Something on our side is not answering. Please try again in a moment.",
    };
    browser.reply(app, (StatusCode::SERVICE_UNAVAILABLE, render(&page)))
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    l: Layout,
}

async fn home(State(app): State<AppState>, browser: Browser) -> Response {
    let signed_in = session::cookie(&browser.headers, session::session_cookie(&app)).is_some();
    browser.reply(&app, render(&Home { l: browser.layout(&app, "Home", signed_in) }))
}

pub(crate) async fn not_found(State(app): State<AppState>, browser: Browser) -> Response {
    let page = ErrorPage {
        l: browser.layout(&app, "Not found", false),
        heading: "Page not found",
        message: "There is nothing at this address. It may have moved, or the link may be mistyped.",
    };
    browser.reply(&app, (StatusCode::NOT_FOUND, render(&page)))
}

async fn stylesheet() -> Response {
    let headers = [(CONTENT_TYPE, "text/css; charset=utf-8"), (CACHE_CONTROL, "public, max-age=3600")];
    (headers, include_str!("../static/style.css")).into_response()
}

pub fn router(app: AppState) -> Router {
    let dev = app.config.dev_mailbox != crate::config::DevMailbox::Off;
    let mut router = Router::new()
        .route("/", get(home))
        .route("/static/style.css", get(stylesheet))
        .merge(signup::routes())
        .merge(account::routes())
        .merge(password::routes());
    if dev {
        router = router.route("/dev/mail", get(devmail::page));
    }
    router.fallback(not_found).with_state(app)
}
