//! Builds the mailer: migrations, pool, the bus worker, and the HTTP side (health, dev mailbox).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use bus::{AnyBus, Group, Worker, WorkerConfig};
use kit::health::Readiness;
use kit::server::{Server, Stop, service_router};
use sqlx::PgPool;

use crate::Config;
use crate::handler::MailHandler;
use crate::templates::Templates;

#[derive(Debug)]
pub struct Application {
    server: Server,
    worker: Worker<AnyBus, MailHandler>,
    bus: AnyBus,
    sweeper: tokio::task::JoinHandle<()>,
    pool: PgPool,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        kit::migrate::at_start(<Config as kit::service::Service>::migrations(), &config.db).await?;
        let pool = kit::db::pool(&config.db, crate::SCHEMA)?;
        let dev = !config.common.environment.is_production_like();
        let api = if dev { crate::mailbox::routes(pool.clone()) } else { Router::new() };
        let bus = AnyBus::connect(&config.bus, pool.clone()).await.context("connecting to the bus")?;
        let router = service_router(
            api,
            bus.readiness(Readiness::new().release(&config.common.release).postgres(pool.clone())),
            &config.common.http,
        );
        let server = Server::bind(config.common.http.addr, router, config.common.http.shutdown_grace).await?;

        let group = Group {
            max_attempts: config.max_attempts,
            backoff_base: config.backoff_base,
            backoff_max: Duration::from_secs(3600),
            ..Group::new(crate::NAME)
        };
        let worker_config = WorkerConfig {
            concurrency: config.concurrency,
            lease: config.lease,
            poll: config.poll,
            drain: config.common.http.shutdown_grace,
            ..WorkerConfig::new(group, crate::TOPICS)
        };
        let handler = MailHandler {
            pool: pool.clone(),
            bus: bus.clone(),
            templates: Arc::new(Templates::new(&config.site_name, &config.public_url)),
            config: Arc::new(config.clone()),
        };
        tracing::info!(transport = ?config.transport, bus = %config.bus, "mailer ready");
        let worker = Worker::new(bus.clone(), handler, worker_config);
        let sweeper = kit::db::keep_swept(pool.clone(), Duration::from_secs(3600), crate::RETENTION);
        Ok(Self { server, worker, bus, pool, sweeper })
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Serves and works (and relays, on JetStream) until `shutdown`; then stops claiming,
    /// drains them all, closes the pool.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let stop = Stop::on(shutdown);
        let (served, worked, relayed) = tokio::join!(
            self.server.run_until(stop.wait()),
            self.worker.run_until(stop.wait()),
            self.bus.relay_until(stop.wait())
        );
        self.sweeper.abort();
        self.pool.close().await;
        served?;
        worked?;
        relayed?;
        Ok(())
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
