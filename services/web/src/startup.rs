//! Builds the web application: migrations, pool, auth client, pages, listener.

use std::future::Future;
use std::time::Duration;

use kit::health::Readiness;
use kit::server::{Server, site_router};
use sqlx::PgPool;

use crate::Config;
use crate::auth_client::AuthClient;
use crate::csrf::Csrf;
use crate::state::{AppState, Inner};

#[derive(Debug)]
pub struct Application {
    sweeper: tokio::task::JoinHandle<()>,
    server: Server,
    pool: PgPool,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = Server::listen(config.common.http.addr).await?;
        Self::build_on(config, listener).await
    }

    /// Builds on a listener bound beforehand: a test that must hand web's address to auth
    /// before web exists binds it first, so no other process can take the port in between.
    pub async fn build_on(config: Config, listener: tokio::net::TcpListener) -> anyhow::Result<Self> {
        kit::migrate::at_start(vec![crate::migrations()], &config.db).await?;
        let pool = kit::db::pool(&config.db, crate::SCHEMA)?;
        config.common.http.trusted_proxies.keep_resolved().await;
        let state = AppState::new(Inner {
            pool: pool.clone(),
            auth: AuthClient::new(&config.auth_url)?,
            csrf: Csrf::new(config.cookie_key.clone()),
            http: reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?,
            config: config.clone(),
        });
        let pages = crate::pages::router(state).layer(axum::middleware::from_fn(crate::security::headers));
        let router = site_router(
            pages,
            Readiness::new().release(&config.common.release).postgres(pool.clone()),
            &config.common.http,
        );
        let server = Server::new(listener, router, config.common.http.shutdown_grace);
        let sweeper = kit::db::keep_swept(pool.clone(), Duration::from_secs(3600), crate::RETENTION);
        Ok(Self { server, pool, sweeper })
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let result = self.server.run_until(shutdown).await;
        self.sweeper.abort();
        self.pool.close().await;
        result
    }
}

impl kit::service::App for Application {
    fn port(&self) -> u16 {
        Application::port(self)
    }

    fn run_until(self, shutdown: kit::service::Shutdown) -> impl Future<Output = anyhow::Result<()>> + Send {
        Application::run_until(self, shutdown)
    }
}
