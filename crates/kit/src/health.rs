//! `GET /healthz` (the process serves) and `GET /readyz` (its dependencies answer).

use crate::problem::Slug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::problem::Problem;

type CheckFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;
type CheckFn = dyn Fn() -> CheckFuture + Send + Sync;

/// The dependencies a service needs to be ready, each probed on every `/readyz`.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Arc<CheckFn>)>,
    release: Option<Arc<str>>,
}

/// A check taking longer than this counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.checks.iter().map(|(n, _)| *n).collect();
        f.debug_struct("Readiness").field("checks", &names).finish()
    }
}

impl Readiness {
    /// Ready with no checks yet; add them with the builder methods.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named check; it fails by returning an error or by taking longer than the timeout.
    pub fn check<F, Fut>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.checks.push((name, Arc::new(move || Box::pin(check()) as CheckFuture)));
        self
    }

    /// The release `/healthz` names (`Common::release`), so a deploy can see which one answers.
    pub fn release(mut self, release: &str) -> Self {
        self.release = Some(release.into());
        self
    }

    /// Adds the Postgres check: `SELECT 1` through the pool.
    pub fn postgres(self, pool: sqlx::PgPool) -> Self {
        self.check("postgres", move || {
            let pool = pool.clone();
            async move { crate::db::probe(&pool).await }
        })
    }

    /// Runs every check; returns the names of those that failed.
    pub async fn failing(&self) -> Vec<&'static str> {
        let timeout = CHECK_TIMEOUT;
        let mut set = tokio::task::JoinSet::new();
        for (name, check) in &self.checks {
            let fut = check();
            let name = *name;
            set.spawn(async move { (name, tokio::time::timeout(timeout, fut).await) });
        }
        let mut down = Vec::new();
        while let Some(joined) = set.join_next().await {
            let Ok((name, outcome)) = joined else {
                continue;
            };
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(check = name, error = format!("{error:#}"), "not ready");
                    down.push(name);
                }
                Err(_) => {
                    tracing::warn!(check = name, ?timeout, "not ready: check timed out");
                    down.push(name);
                }
            }
        }
        down.sort_unstable();
        down
    }
}

/// The two health routes, to merge into a service's router.
pub fn routes(readiness: Readiness) -> Router {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).with_state(readiness)
}

async fn healthz(State(readiness): State<Readiness>) -> Json<Value> {
    match &readiness.release {
        Some(release) => Json(json!({ "status": "ok", "release": release.as_ref() })),
        None => Json(json!({ "status": "ok" })),
    }
}

async fn readyz(State(readiness): State<Readiness>) -> Response {
    let down = readiness.failing().await;
    if down.is_empty() {
        return (StatusCode::OK, Json(json!({ "status": "ready" }))).into_response();
    }
    let checks: Map<String, Value> = down.iter().map(|n| (n.to_string(), json!("down"))).collect();
    Problem::new(StatusCode::SERVICE_UNAVAILABLE, Slug::NOT_READY, "Service not ready")
        .detail(format!("unavailable: {}", down.join(", ")))
        .extension("checks", checks)
        .retry_after(5)
        .into_response()
}
