//! Auth's HTTP API and its OpenAPI document.

mod account;
mod login;
mod one_time;
pub(crate) mod password;
mod sessions;
pub(crate) mod signup;

use axum::Router;
use axum::routing::{get, post};
use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/signup", post(signup::signup))
        .route("/activation", post(signup::activate))
        .route("/activation/resend", post(signup::resend))
        .route("/login", post(login::login))
        .route("/token/refresh", post(sessions::refresh))
        .route("/logout", post(sessions::logout))
        .route("/logout/all", post(sessions::logout_all))
        .route("/password/reset", post(password::request_reset))
        .route("/password/reset/confirm", post(password::confirm_reset))
        .route("/password/change", post(password::change))
        .route("/me", get(account::me))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
        .with_state(state)
}

/// A response that says only that the request was taken; the same whatever the account's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub status: &'static str,
    pub message: &'static str,
}

/// A status change that succeeded.
#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    pub status: &'static str,
}

/// An RFC 9457 problem (`application/problem+json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemDoc {
    /// A stable `tag:slipway.dev,2026:problem/<slug>` URI.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: Option<String>,
    /// The request's id, as in the `X-Request-Id` header: quote it when reporting a problem.
    pub request_id: Option<String>,
}

/// The public keys that verify access tokens (RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "keys",
    responses((status = 200, description = "JWK set: Ed25519 keys (OKP), the current signer first")))]
async fn jwks(
    State(app): State<AppState>,
) -> ([(axum::http::HeaderName, &'static str); 1], Json<serde_json::Value>) {
    ([(axum::http::header::CACHE_CONTROL, "public, max-age=300")], Json(app.keys.jwks()))
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Slipway auth", description = "Accounts, sessions and the keys that sign them. \
        Errors are RFC 9457 problem+json."),
    paths(
        signup::signup, signup::activate, signup::resend, login::login,
        sessions::refresh, sessions::logout, sessions::logout_all,
        password::request_reset, password::confirm_reset, password::change,
        account::me, jwks,
    ),
    components(schemas(Accepted, Done, ProblemDoc, signup::Activated)),
    modifiers(&BearerAuth, &Problems),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Makes the document say what every operation can answer: every error is
/// `application/problem+json`, and an operation with a JSON body may also answer 400
/// (malformed), 413 (too large), 415 (not JSON) and 422 (invalid); any may answer 500 or 503.
struct Problems;

impl utoipa::Modify for Problems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        const PROBLEM: &str = "application/problem+json";
        let problem = |description: &str| {
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ProblemDoc"))).build();
            RefOr::T(ResponseBuilder::new().description(description).content(PROBLEM, content).build())
        };
        for item in openapi.paths.paths.values_mut() {
            let operations =
                [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch];
            for op in operations.into_iter().flatten() {
                let mut standard = vec![
                    ("500", "an unexpected failure; the cause is logged, not shown"),
                    ("503", "temporarily unavailable (the database, or too busy); retry after `Retry-After`"),
                ];
                if op.request_body.is_some() {
                    standard.extend([
                        ("400", "the body is not well-formed JSON"),
                        ("413", "the body is too large"),
                        ("415", "the body is not application/json"),
                        ("422", "a field is missing, unknown or invalid"),
                    ]);
                }
                for (status, description) in standard {
                    op.responses.responses.entry(status.to_string()).or_insert_with(|| problem(description));
                }
                for (status, response) in &mut op.responses.responses {
                    if let RefOr::T(response) = response
                        && (status.starts_with('4') || status.starts_with('5'))
                        && let Some(content) = response.content.shift_remove("application/json")
                    {
                        response.content.insert(PROBLEM.to_string(), content);
                    }
                }
            }
        }
    }
}
