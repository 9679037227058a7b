//! `CsrfForm<T>`: a form POST whose CSRF token has been checked against the browser's cookie
//! before the handler runs. A form without a valid token gets the "form expired" page (403)
//! and never reaches the handler; one that does not parse gets axum's form rejection, as
//! `Form` does. The token is a field `csrf` beside `T`'s own fields.

use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::Browser;
use crate::state::AppState;

/// A form whose CSRF token matched; the handler gets `T`.
#[derive(Debug)]
pub struct CsrfForm<T>(pub T);

/// The form as posted: the token and the handler's fields.
#[derive(Debug, Deserialize)]
struct Posted<T> {
    csrf: String,
    #[serde(flatten)]
    fields: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let Ok(browser) = Browser::from_request_parts(&mut parts, app).await;
        let req = Request::from_parts(parts, body);
        let Form(posted) =
            Form::<Posted<T>>::from_request(req, app).await.map_err(IntoResponse::into_response)?;
        if !browser.csrf_ok(app, &posted.csrf) {
            return Err(browser.forbidden(app));
        }
        Ok(Self(posted.fields))
    }
}

/// A form with no fields but its token (log out, and the like).
#[derive(Debug, Deserialize)]
pub struct NoFields {}
