//! The Postgres pool: bounded connect, acquire and statement times, and a readiness probe.

use std::str::FromStr;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::config::DbConfig;

mod roles;
pub use roles::{Grants, provision, scram_verifier};

/// Connection options from config: the URL (as the service's own role when it has one), the
/// statement timeout, and the service's schema first on the `search_path`, so its queries
/// need no schema prefix.
pub fn connect_options(config: &DbConfig, schema: &str) -> anyhow::Result<PgConnectOptions> {
    let mut options = PgConnectOptions::from_str(config.url.expose_secret())
        .context("SLIPWAY_DATABASE_URL is not a valid postgres:// URL")?;
    if let Some(role) = &config.role {
        options = options.username(&role.name).password(role.password.expose_secret());
    }
    let statement_ms = config.statement_timeout.as_millis().to_string();
    Ok(options
        .application_name(schema)
        .options([("statement_timeout", statement_ms.as_str()), ("search_path", schema)]))
}

/// A pool that connects lazily: a service starts (and reports not-ready) while Postgres is down.
pub fn pool(config: &DbConfig, schema: &str) -> anyhow::Result<PgPool> {
    let options = connect_options(config, schema)?;
    Ok(PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout.max(config.connect_timeout))
        .test_before_acquire(true)
        .connect_lazy_with(options))
}

/// One connection outside any pool, bounded by the connect timeout. Closing it ends its
/// session, so session state such as advisory locks cannot leak to another user.
pub async fn dedicated(config: &DbConfig, schema: &str) -> anyhow::Result<PgConnection> {
    let options = connect_options(config, schema)?;
    // A server still starting answers "the database system is starting up" (57P03) for a
    // moment after it listens: asked again until it is up, within the connect timeout.
    let connect = async {
        loop {
            match PgConnection::connect_with(&options).await {
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("57P03") => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    };
    tokio::time::timeout(config.connect_timeout, connect)
        .await
        .map_err(|_| anyhow::anyhow!("connecting to Postgres timed out after {:?}", config.connect_timeout))?
        .context("cannot connect to Postgres")
}

/// `SELECT 1` through the pool.
pub async fn probe(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query("SELECT 1").execute(pool).await.context("postgres did not answer")?;
    Ok(())
}

/// Whether an error means the database cannot be used right now, rather than that the query
/// is wrong: no connection to be had, the connection cut, or the server shutting down,
/// starting or out of connections. Such a request may be answered 503 and tried again.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            true
        }
        sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections,
            // connection_exception class.
            matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300") || code.starts_with("08")
        }),
        _ => false,
    }
}

/// Runs retention deletes every `every` until the returned task is aborted, logging how many
/// rows each removed: each statement is one `(what, DELETE …)` pair.
pub fn keep_swept(
    pool: PgPool,
    every: std::time::Duration,
    statements: &'static [(&'static str, &'static str)],
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            for (what, sql) in statements {
                match sqlx::query(sqlx::AssertSqlSafe(*sql)).execute(&pool).await {
                    Ok(done) if done.rows_affected() > 0 => {
                        tracing::info!(what, removed = done.rows_affected(), "retention sweep");
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(what, %error, "retention sweep failed"),
                }
            }
        }
    })
}
