//! The HTTP server every service runs: standard layers, and graceful shutdown on SIGTERM.

use crate::problem::Slug;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

use crate::config::HttpConfig;
use crate::health::{self, Readiness};
use crate::problem::{self, Problem};
use crate::request_id;

/// Wraps a service's API with what every service has: health routes, a problem+json 404,
/// the request-id span, the request timeout and the body limit.
pub fn service_router(api: Router, readiness: Readiness, http: &HttpConfig) -> Router {
    let api =
        api.fallback(problem::not_found).method_not_allowed_fallback(async || Problem::method_not_allowed());
    site_router(api, readiness, http)
}

/// Like [`service_router`] for a site that answers unknown paths with its own page: the
/// router's fallback is kept.
pub fn site_router(pages: Router, readiness: Readiness, http: &HttpConfig) -> Router {
    let mut router = pages.merge(health::routes(readiness));
    if !http.request_timeout.is_zero() {
        let limit = http.request_timeout;
        router = router.layer(middleware::from_fn(move |req: Request, next: Next| timeout(limit, req, next)));
    }
    let body_limit = if http.body_limit == 0 {
        DefaultBodyLimit::disable()
    } else {
        DefaultBodyLimit::max(http.body_limit)
    };
    router.layer(body_limit).layer(middleware::from_fn(request_id::layer))
}

async fn timeout(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(?limit, "request timed out");
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, Slug::TIMEOUT, "Request timed out")
                .detail(format!("The request took longer than {limit:?}."))
                .retry_after(1)
                .into_response()
        }
    }
}

/// A bound listener with its router. Bind to port 0 in tests and read [`Server::port`].
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    router: Router,
    grace: Duration,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) for `router`; in-flight requests get `grace`
    /// to finish at shutdown.
    pub async fn bind(addr: SocketAddr, router: Router, grace: Duration) -> anyhow::Result<Self> {
        Ok(Self { listener: Self::listen(addr).await?, router, grace })
    }

    /// Binds `addr`, saying what to check when the port is taken.
    pub async fn listen(addr: SocketAddr) -> anyhow::Result<TcpListener> {
        TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e} (is another process using the port?)"))
    }

    /// A server on a listener made elsewhere (with socket options of its own).
    pub fn new(listener: TcpListener, router: Router, grace: Duration) -> Self {
        Self { listener, router, grace }
    }

    /// The port bound, which tests read after binding port 0.
    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until SIGTERM or SIGINT, then drains.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` resolves; then stops accepting and lets in-flight requests
    /// finish within the grace period. Past it, the remaining connections are dropped.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let addr = self.local_addr();
        let grace = self.grace;
        tracing::info!(%addr, "listening");
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let serve =
            axum::serve(self.listener, self.router.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async move {
                    shutdown.await;
                    tracing::info!(?grace, "shutting down: no new connections, draining in-flight requests");
                    let _ = stopping_tx.send(());
                })
                .into_future();
        tokio::pin!(serve);
        let drained = tokio::select! {
            result = &mut serve => result,
            Ok(()) = stopping_rx => match tokio::time::timeout(grace, &mut serve).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(?grace, "grace period over: dropping unfinished requests");
                    return Ok(());
                }
            },
        };
        drained?;
        tracing::info!("drained, stopped");
        Ok(())
    }
}

/// Listens for SIGTERM (Docker's stop) and SIGINT (Ctrl-C) from the moment it is called, and
/// resolves on the first of them.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        let (Ok(mut term), Ok(mut int)) = (term, int) else {
            tracing::warn!("cannot listen for signals; stop the process by killing it");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "stop requested"),
            _ = int.recv() => tracing::info!(signal = "SIGINT", "stop requested"),
        }
    }
}

/// One stop signal shared by the parts of a process (a server and a bus worker, or every
/// service of `slipway dev`): each [`Stop::wait`] resolves once [`Stop::trigger`] is called.
#[derive(Debug, Clone)]
pub struct Stop(std::sync::Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Stop {
    fn default() -> Self {
        Self(std::sync::Arc::new(tokio::sync::watch::Sender::new(false)))
    }
}

impl Stop {
    /// A stop triggered when `shutdown` resolves.
    pub fn on(shutdown: impl Future<Output = ()> + Send + 'static) -> Self {
        let stop = Self::default();
        let trigger = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            trigger.trigger();
        });
        stop
    }

    /// Stops every part waiting on this signal (idempotent).
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// Whether the stop was triggered.
    pub fn triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the stop is triggered (at once if it already was).
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.subscribe();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }
}
