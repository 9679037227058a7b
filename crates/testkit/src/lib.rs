//! Test harness: each integration test gets a fresh database on the server the test command
//! provides (`DATABASE_URL`), and a TCP proxy lets a test take Postgres away and give it back.

#![warn(missing_docs, unreachable_pub)]

mod build_dir;
pub mod docker;
mod files;
pub mod load;
pub mod nats;
mod proxy;
pub mod registry;
pub mod remote;
pub mod s3;
pub mod smtp;
mod spawn;
pub mod tls;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Executor};

pub use build_dir::{build_dir_of, seed_build_dir};
pub use files::copy_of_checkout;
pub use proxy::TcpProxy;
pub use spawn::{Spawned, spawn};

/// The prefix of every test database; the test command drops `<prefix><run>_…` when it ends.
pub const DB_PREFIX: &str = "slipway_t_";

/// The server tests run against. `cargo xtask test` sets it, starting a throwaway cluster
/// when the caller did not.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "DATABASE_URL is not set. Run the tests with `cargo xtask test`, which starts a throwaway \
             Postgres, or set DATABASE_URL to a server where this user may create databases"
        )
    })
}

/// A database made for one test.
#[derive(Debug, Clone)]
pub struct TestDb {
    /// The database's name (`slipway_t_<run>_<id>`).
    pub name: String,
    /// A superuser URL for it.
    pub url: String,
}

impl TestDb {
    /// Creates an empty database with a unique name on the test server.
    pub async fn create() -> Self {
        let server = PgConnectOptions::from_str(&server_url()).expect("DATABASE_URL is a valid postgres URL");
        let run = std::env::var("SLIPWAY_TEST_RUN").unwrap_or_else(|_| "adhoc".into());
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("{DB_PREFIX}{run}_{}", &id[..12]);
        let mut conn =
            server.clone().database("postgres").connect().await.expect("connect to the test server");
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .expect("create test database");
        Self { url: with_database(&server_url(), &name), name }
    }

    /// The address of the server holding this database (to put a [`TcpProxy`] in front of).
    pub fn addr(&self) -> std::net::SocketAddr {
        let options = PgConnectOptions::from_str(&self.url).expect("valid url");
        format!("{}:{}", options.get_host(), options.get_port()).parse().expect("a host:port address")
    }

    /// The URL of this database through a proxy on `port` instead of directly.
    pub fn url_via(&self, port: u16) -> String {
        let options = PgConnectOptions::from_str(&self.url).expect("valid url");
        options.host("127.0.0.1").port(port).to_url_lossy().to_string()
    }

    /// A pool configuration for this database with short timeouts.
    pub fn db_config(&self) -> kit::config::DbConfig {
        db_config(&self.url)
    }

    /// A pool on this database.
    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.url).await.expect("connect to the test database")
    }
}

/// `url` with its database replaced (a plain libpq URL, usable from any language's driver).
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let prefix = match base.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest)),
        None => base.to_string(),
    };
    match query {
        Some(q) => format!("{prefix}/{database}?{q}"),
        None => format!("{prefix}/{database}"),
    }
}

/// A pool configuration for `url` with the short timeouts tests want.
pub fn db_config(url: &str) -> kit::config::DbConfig {
    kit::config::DbConfig {
        url: secrecy::SecretString::from(url.to_string()),
        max_connections: 5,
        connect_timeout: Duration::from_secs(2),
        acquire_timeout: Duration::from_secs(2),
        statement_timeout: Duration::from_secs(10),
        migrate_on_start: true,
        role: None,
    }
}

/// A loopback port the OS just handed out and that is free again: for a process the test
/// starts, which must be told its port (a server in the test binds port 0 itself).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Awaits `condition` until it holds, checking every 20 ms, failing after `limit`.
pub async fn eventually(limit: Duration, what: &str, condition: impl AsyncFnMut() -> bool) {
    eventually_or(limit, what, condition, String::new).await;
}

/// `eventually`, with `context` (a process's log, say) in the failure's message.
pub async fn eventually_or(
    limit: Duration,
    what: &str,
    mut condition: impl AsyncFnMut() -> bool,
    context: impl FnOnce() -> String,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition().await {
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {limit:?} waiting for: {what}\n{}", context());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
