//! Builds the gateway: loads the routes, starts health checks, binds the proxy and admin
//! listeners; runs until shutdown, reloading the routes file when it changes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderValue;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use kit::health::Readiness;
use kit::server::{Server, Stop, service_router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::listen::Socket;
use tokio_rustls::TlsAcceptor;

use crate::Config;
use crate::access_log::AccessLog;
use crate::edge_auth::EdgeAuth;
use crate::health::{self, CheckClient};
use crate::proxy::{Metrics, Proxy};
use crate::routes::{self, RouteSpec, Table};
use crate::serve::{MAX_HEAD, Served};
use crate::tls::CertDir;

struct TlsListener {
    listener: Socket,
    acceptor: TlsAcceptor,
    certs: Arc<CertDir>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener").field("listener", &self.listener).field("certs", &self.certs).finish()
    }
}

#[derive(Debug)]
pub struct Application {
    listener: Socket,
    /// The TLS listener, its acceptor and the certificates it serves.
    tls: Option<TlsListener>,
    admin: Server,
    /// The admin API on the container's own Unix socket, when configured.
    admin_router: Option<axum::Router>,
    proxy: Arc<Proxy>,
    checks: CheckClient,
    config: Config,
}

/// The routes file's specs and modification time; no file means no routes from it.
fn read_file(config: &Config) -> anyhow::Result<(Vec<RouteSpec>, Option<SystemTime>)> {
    let Some(path) = &config.routes_file else { return Ok((Vec::new(), None)) };
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the routes file {} ({e}); set SLIPWAY_GATEWAY_ROUTES_PATH (empty for none)",
            path.display()
        )
    })?;
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    Ok((routes::parse_file(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?, modified))
}

/// The table for the file's routes plus Docker's (already checked by the watcher). A bad file
/// route fails the whole build: the current table stays.
fn build_table(file: &[RouteSpec], docker: &[RouteSpec], previous: &Table) -> anyhow::Result<Table> {
    Table::build(routes::merge(file.to_vec(), docker.to_vec()), previous).map_err(|e| anyhow::anyhow!("{e}"))
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let (file, _) = read_file(&config)?;
        config.common.http.trusted_proxies.keep_resolved().await;
        let table = build_table(&file, &[], &Table::default())?;
        let checks: CheckClient =
            Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1).build_http();
        let proxy = Arc::new(Proxy {
            table: ArcSwap::from_pointee(table),
            limiter: Default::default(),
            edge: EdgeAuth::new(&config.jwks_url, &config.jwt_issuer, &config.jwt_audience),
            trusted: config.common.http.trusted_proxies.clone(),
            metrics: Metrics::default(),
            upstream_timeout: config.upstream_timeout,
            access: AccessLog::new(config.common.log_format == kit::config::LogFormat::Json),
            body_limit: config.common.http.body_limit,
            retry_budget: Default::default(),
            https_redirect: config.tls.as_ref().and_then(|t| t.redirect_port),
            hsts: config
                .tls
                .as_ref()
                .and_then(|t| t.hsts.as_deref())
                .and_then(|h| HeaderValue::from_str(h).ok()),
            warm: Default::default(),
            draining: Default::default(),
        });
        // Without a warm-up the listeners take connections at once (as a test expects);
        // with one, only once the gateway is warm (see `run_until`).
        let open = |socket: Socket| -> anyhow::Result<Socket> {
            if config.warm_up.is_zero() { Ok(Socket::Listening(socket.open()?)) } else { Ok(socket) }
        };
        let listener = open(Socket::bind(config.common.http.addr, config.reuse_port)?)?;
        let tls = match &config.tls {
            None => None,
            Some(t) => {
                let certs = Arc::new(CertDir::load(&t.dir).map_err(|e| anyhow::anyhow!(e))?);
                let acceptor = crate::tls::acceptor(certs.clone())?;
                let listener = open(Socket::bind(t.addr, config.reuse_port)?)?;
                Some(TlsListener { listener, acceptor, certs })
            }
        };
        let warm = proxy.clone();
        let readiness = Readiness::new().release(&config.common.release).check("warm", move || {
            let listening = warm.warm.listening.load(Ordering::Relaxed);
            async move {
                anyhow::ensure!(listening, "warming up: not taking connections yet");
                Ok(())
            }
        });
        let admin_router =
            service_router(crate::admin::router(proxy.clone()), readiness, &config.common.http);
        let admin_listener = Socket::bind(config.admin_addr, config.reuse_port)?.open()?;
        let admin = Server::new(admin_listener, admin_router.clone(), config.common.http.shutdown_grace);
        let admin_router = config.admin_socket.is_some().then_some(admin_router);
        Ok(Self { listener, tls, admin, admin_router, proxy, checks, config })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    /// The TLS listener's port, if TLS is on.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls.as_ref().and_then(|t| t.listener.local_addr().ok()).map(|a| a.port())
    }

    pub fn admin_port(&self) -> u16 {
        self.admin.port()
    }

    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let stop = Stop::on(shutdown);
        for route in &self.proxy.table.load().routes {
            for instance in &route.instances {
                tokio::spawn(health::watch(
                    self.checks.clone(),
                    instance.clone(),
                    route.health.clone(),
                    route.name.clone(),
                ));
            }
        }
        let reloader = tokio::spawn(reload(self.config.clone(), self.proxy.clone(), self.checks.clone()));
        let flusher = {
            let proxy = self.proxy.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(crate::access_log::FLUSH_EVERY);
                loop {
                    every.tick().await;
                    proxy.access.flush();
                }
            })
        };
        let jwks = {
            let (proxy, every) = (self.proxy.clone(), self.config.jwks_refresh);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    proxy.edge.keep_fresh().await;
                }
            })
        };
        let admin = tokio::spawn(self.admin.run_until(stop.wait()));
        let admin_socket = match (&self.config.admin_socket, self.admin_router) {
            (Some(path), Some(router)) => Some(crate::listen::serve_admin_socket(path, router, stop.wait())?),
            _ => None,
        };
        if !self.config.warm_up.is_zero() {
            let docker = self.config.docker.is_some();
            tokio::select! {
                () = crate::warm::wait(&self.proxy.warm, &self.proxy.table, docker, self.config.warm_up) => {}
                () = stop.wait() => {}
            }
        }
        let listener = self.listener.open()?;
        let tls = match self.tls {
            Some(t) => Some((t.listener.open()?, t.acceptor, t.certs)),
            None => None,
        };
        self.proxy.warm.listening.store(true, Ordering::Relaxed);
        let graceful = GracefulShutdown::new();
        let timeout = (self.config.header_timeout, self.config.idle_timeout);
        let closing = CancellationToken::new();
        let plain = accept(listener, None, self.proxy.clone(), timeout, (&graceful, &closing), &stop);
        let secure = async {
            if let Some((listener, acceptor, certs)) = tls {
                let every = self.config.reload_every;
                let refresh = tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(every).await;
                        certs.refresh();
                    }
                });
                accept(listener, Some(acceptor), self.proxy.clone(), timeout, (&graceful, &closing), &stop)
                    .await;
                refresh.abort();
            }
        };
        tokio::join!(plain, secure);
        self.proxy.draining.store(true, Ordering::Relaxed);
        // The listeners are closed (a successor sharing the ports takes the new connections).
        // Kept-alive connections get one more request, answered with `Connection: close`, so
        // a client is not cut off between two requests; then the idle ones are closed.
        let drain_until = tokio::time::Instant::now() + self.config.drain_time;
        tracing::info!(connections = graceful.count(), "gateway shutting down: draining connections");
        while graceful.count() > 0 && tokio::time::Instant::now() < drain_until {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        closing.cancel();
        if tokio::time::timeout(self.config.common.http.shutdown_grace, graceful.shutdown()).await.is_err() {
            tracing::warn!("grace period over: dropping unfinished connections");
        }
        reloader.abort();
        flusher.abort();
        jwks.abort();
        self.proxy.access.finish();
        for route in &self.proxy.table.load().routes {
            route.instances.iter().for_each(|i| i.retired.store(true, Ordering::Relaxed));
        }
        admin.await??;
        if let Some(task) = admin_socket {
            let _ = task.await;
        }
        Ok(())
    }
}

/// The next accepted connection, or `None` once `stopped` resolves; a failed accept is logged
/// and skipped.
pub(crate) async fn next_connection(
    listener: &TcpListener,
    mut stopped: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => return Some(a),
                Err(error) => tracing::warn!(%error, "accept failed"),
            },
            () = &mut stopped => return None,
        }
    }
}

/// Accepts connections (through TLS if `tls`) until `stopped`; each is watched by `graceful`
/// so shutdown lets it finish, and closes when idle once `closing` is cancelled.
async fn accept(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    proxy: Arc<Proxy>,
    (header_timeout, idle_timeout): (std::time::Duration, std::time::Duration),
    (graceful, closing): (&GracefulShutdown, &CancellationToken),
    stop: &Stop,
) {
    let mut hyper = auto::Builder::new(TokioExecutor::new());
    // A request head of at most 32 KiB (hyper answers 431 past it; one line may hold at most
    // 8 KiB, checked per request), as nginx's default buffers allow.
    hyper.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout).max_buf_size(MAX_HEAD);
    hyper.http2().max_header_list_size(MAX_HEAD as u32);
    let https = tls.is_some();
    let served =
        Arc::new(Served { proxy, hyper, tls, header_timeout, idle_timeout, closing: closing.clone() });
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, https, "gateway listening");
    }
    let stopped = stop.wait();
    tokio::pin!(stopped);
    while let Some((stream, peer)) = next_connection(&listener, stopped.as_mut()).await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(served.clone().connection(stream, peer, graceful.watcher()));
    }
}

fn modified(config: &Config) -> Option<SystemTime> {
    config.routes_file.as_ref().and_then(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
}

/// Keeps the table current: the routes file is re-read when it changes (names re-resolved on
/// every tick, so DNS changes are followed too) and Docker's routes are taken as they come.
/// A new table is swapped in atomically (requests in flight keep the one they started with);
/// new instances get health checks, removed ones are retired.
async fn reload(config: Config, proxy: Arc<Proxy>, checks: CheckClient) {
    let mut docker = config.docker.clone().map(crate::docker::spawn);
    let mut file = read_file(&config).map(|(specs, _)| specs).unwrap_or_default();
    let mut last_modified = modified(&config);
    let mut tick = tokio::time::interval(config.reload_every);
    // Whether Docker's first listing has come (what a starting gateway waits for).
    let mut heard = false;
    loop {
        let docker_changed = async {
            match docker.as_mut() {
                Some(rx) => rx.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tick.tick() => {
                match read_file(&config) {
                    Ok((specs, _)) => file = specs,
                    Err(error) => {
                        if proxy.metrics.reload_failures.fetch_add(1, Ordering::Relaxed) == 0
                            || modified(&config) != last_modified
                        {
                            tracing::error!(error = format!("{error:#}"), "routes file not reloaded; keeping the current routes");
                        }
                        last_modified = modified(&config);
                        continue;
                    }
                }
            }
            alive = docker_changed => if alive { heard = true } else { docker = None },
        }
        let listing = docker.as_ref().map(|rx| rx.borrow().clone()).unwrap_or_default();
        let from_docker = listing.routes;
        let current = proxy.table.load_full();
        let table = match build_table(&file, &from_docker, &current) {
            Ok(t) => t,
            Err(error) => {
                if proxy.metrics.reload_failures.fetch_add(1, Ordering::Relaxed) == 0
                    || modified(&config) != last_modified
                {
                    tracing::error!(
                        error = format!("{error:#}"),
                        "routes not reloaded; keeping the current routes"
                    );
                }
                last_modified = modified(&config);
                continue;
            }
        };
        let now_modified = modified(&config);
        if now_modified != last_modified || table.shape() != current.shape() {
            last_modified = now_modified;
            swap(&proxy, &checks, &current, table);
        }
        // Warm once the instances on their way are in too: a gateway healthy before them
        // would answer 503 for a moment after `docker compose up --wait` returns.
        if heard && listing.starting == 0 {
            proxy.warm.discovered.store(true, Ordering::Relaxed);
        }
    }
}

/// Swaps in a new table, starting checks for new instances and retiring removed ones.
fn swap(proxy: &Proxy, checks: &CheckClient, current: &Table, table: Table) {
    let old: Vec<_> = current.routes.iter().flat_map(|r| r.instances.iter().cloned()).collect();
    let new: Vec<_> =
        table.routes.iter().flat_map(|r| r.instances.iter().map(move |i| (r, i.clone()))).collect();
    for (route, instance) in &new {
        if !old.iter().any(|o| Arc::ptr_eq(o, instance)) {
            tokio::spawn(health::watch(
                checks.clone(),
                instance.clone(),
                route.health.clone(),
                route.name.clone(),
            ));
        }
    }
    for o in &old {
        if !new.iter().any(|(_, n)| Arc::ptr_eq(o, n)) {
            o.retired.store(true, Ordering::Relaxed);
        }
    }
    proxy.table.store(Arc::new(table));
    tracing::info!(routes = proxy.table.load().routes.len(), "routes reloaded");
}

impl kit::service::App for Application {
    fn port(&self) -> u16 {
        Application::port(self)
    }

    fn run_until(self, shutdown: kit::service::Shutdown) -> impl Future<Output = anyhow::Result<()>> + Send {
        Application::run_until(self, shutdown)
    }
}
