//! Builds the auth application: migrations, pool, routes, listener.

use std::future::Future;

use axum::Router;
use kit::health::Readiness;
use kit::server::{Server, service_router};
use sqlx::PgPool;

use crate::Config;

/// A built, bound auth service, ready to run.
#[derive(Debug)]
pub struct Application {
    server: Server,
    pool: PgPool,
}

impl Application {
    /// Applies migrations (unless turned off), connects the pool and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        if config.db.migrate_on_start {
            let applied = crate::migrations().up(&config.db).await?;
            for step in &applied {
                tracing::info!(file = %step.file, duration = ?step.duration, "migration applied");
            }
        }
        let pool = kit::db::pool(&config.db, crate::SCHEMA)?;
        let readiness = Readiness::new().postgres(pool.clone());
        let router = service_router(api(pool.clone()), readiness, &config.common.http);
        let server = Server::bind(config.common.http.addr, router, config.common.http.shutdown_grace).await?;
        Ok(Self { server, pool })
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Serves until SIGTERM or Ctrl-C, then drains.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.run_until_stopped().await?;
        self.pool.close().await;
        Ok(())
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        self.server.run_until(shutdown).await?;
        self.pool.close().await;
        Ok(())
    }
}

/// Auth's own routes. The flows arrive with the auth issue; the skeleton serves health only.
fn api(pool: PgPool) -> Router {
    Router::new().with_state(pool)
}
