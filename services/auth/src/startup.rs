//! Builds the auth application: migrations, pool, keys, hasher, routes, listener.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use bus::{AnyBus, Backend as _, Group, Worker, WorkerConfig};
use kit::health::Readiness;
use kit::server::{Server, Stop, service_router};
use secrecy::ExposeSecret;
use sqlx::PgPool;

use crate::Config;
use crate::deferred::Deferred;
use crate::domain::TokenHasher;
use crate::hashing::Hasher;
use crate::jwt::{self, Keys};
use crate::state::{AppState, Inner};

/// A built, bound auth service, ready to run.
#[derive(Debug)]
pub struct Application {
    server: Server,
    pool: PgPool,
    janitor: tokio::task::JoinHandle<()>,
    worker: Worker<AnyBus, Deferred>,
    bus: AnyBus,
}

impl Application {
    /// Applies migrations (or waits until they are applied), connects the pool, loads the signing keys and
    /// binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        kit::migrate::at_start(<Config as kit::service::Service>::migrations(), &config.db).await?;
        let pool = kit::db::pool(&config.db, crate::SCHEMA)?;
        config.common.http.trusted_proxies.keep_resolved().await;
        let signer = signing_key(&config, &pool).await?;
        let keys = Keys::new(&config.jwt, &signer)?;
        tracing::info!(kid = keys.signer_kid(), "signing access tokens");
        let argon = config.argon.clone();
        let hasher = tokio::task::spawn_blocking(move || Hasher::new(&argon)).await??;
        let state = AppState::new(Inner {
            pool: pool.clone(),
            hasher,
            keys,
            tokens: TokenHasher::new(config.token_key.clone()),
            config: config.clone(),
        });
        // Subscribed before the first request can queue work for it.
        let group = Group::new(crate::queue::GROUP);
        let bus = AnyBus::connect(&config.bus, pool.clone()).await.context("connecting to the bus")?;
        bus.subscribe(&group, crate::queue::TOPICS).await?;
        let worker_config = WorkerConfig {
            drain: config.common.http.shutdown_grace,
            ..WorkerConfig::new(group, crate::queue::TOPICS)
        };
        let worker =
            Worker::new(bus.clone(), Deferred { app: state.clone(), bus: bus.clone() }, worker_config);
        let readiness =
            bus.readiness(Readiness::new().release(&config.common.release).postgres(pool.clone()));
        let router = service_router(crate::routes::router(state), readiness, &config.common.http);
        let server = Server::bind(config.common.http.addr, router, config.common.http.shutdown_grace).await?;
        let janitor =
            tokio::spawn(crate::janitor::run(pool.clone(), config.clone(), Duration::from_secs(3600)));
        tracing::info!(bus = %config.bus, "on the bus");
        Ok(Self { server, pool, janitor, worker, bus })
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Serves until SIGTERM or Ctrl-C, then drains.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(kit::server::shutdown_signal()).await
    }

    /// Serves until `shutdown` resolves, then drains (the relay too, on JetStream).
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let stop = Stop::on(shutdown);
        let (served, worked, relayed) = tokio::join!(
            self.server.run_until(stop.wait()),
            self.worker.run_until(stop.wait()),
            self.bus.relay_until(stop.wait())
        );
        self.janitor.abort();
        self.pool.close().await;
        served?;
        worked?;
        relayed?;
        Ok(())
    }
}

/// The configured signing key; in dev and test, one generated on first start and kept in the
/// database so every instance and every restart signs with the same key.
async fn signing_key(config: &Config, pool: &PgPool) -> anyhow::Result<String> {
    let configured = config.jwt.key.expose_secret();
    if !configured.is_empty() {
        return Ok(configured.to_string());
    }
    anyhow::ensure!(
        !config.common.environment.is_production_like(),
        "SLIPWAY_AUTH_JWT_KEY is required in {}",
        config.common.environment
    );
    sqlx::query("INSERT INTO dev_signing_key (pkcs8_pem) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(jwt::generate_pem()?)
        .execute(pool)
        .await
        .context("storing the development signing key")?;
    sqlx::query_scalar("SELECT pkcs8_pem FROM dev_signing_key")
        .fetch_one(pool)
        .await
        .context("reading the development signing key")
}

impl kit::service::App for Application {
    fn port(&self) -> u16 {
        Application::port(self)
    }

    fn run_until(self, shutdown: kit::service::Shutdown) -> impl Future<Output = anyhow::Result<()>> + Send {
        Application::run_until(self, shutdown)
    }
}
