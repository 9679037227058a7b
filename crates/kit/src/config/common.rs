//! The settings every service has: environment, logging, HTTP listener, limits, Postgres.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use secrecy::SecretString;

use super::{Environment, Reader, Setting};
use crate::client_ip::TrustedProxies;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, coloured; the dev default.
    Pretty,
    /// One JSON object per line; the staging and prod default.
    Json,
}

impl Setting for LogFormat {
    const EXPECTED: &'static str = "pretty or json";
    fn parse_setting(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pretty" => Some(Self::Pretty),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// The HTTP listener and the limits every request is held to.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub addr: SocketAddr,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// A request taking longer gets 503; `0` turns the limit off.
    pub request_timeout: Duration,
    /// The largest request body accepted, in bytes; `0` turns the limit off.
    pub body_limit: usize,
    /// Peers whose `X-Forwarded-For` is believed (the gateway). Nobody by default.
    pub trusted_proxies: TrustedProxies,
}

/// The Postgres pool.
#[derive(Debug, Clone)]
pub struct DbConfig {
    pub url: SecretString,
    pub max_connections: u32,
    pub connect_timeout: Duration,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
    /// Apply this service's migrations when it starts (under the migration lock).
    pub migrate_on_start: bool,
}

/// What every service reads: call [`Common::read`] first, then the service's own settings.
#[derive(Debug, Clone)]
pub struct Common {
    pub environment: Environment,
    /// An `EnvFilter` directive such as `info` or `auth=debug,info`.
    pub log: String,
    pub log_format: LogFormat,
    pub http: HttpConfig,
}

/// The database URL `slipway dev` and the compose stack use on a developer's machine.
pub const DEV_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/slipway";

impl Common {
    /// Reads the shared settings; `default_port` is the service's own port in dev.
    pub fn read(r: &mut Reader<'_>, default_port: u16) -> Self {
        let environment = r.environment();
        let production = environment.is_production_like();
        let default_host =
            if production { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::LOCALHOST) };
        let default_format = if production { LogFormat::Json } else { LogFormat::Pretty };
        let host = r.get("HOST", default_host);
        let port = r.get("PORT", default_port);
        Self {
            environment,
            log: r.get("LOG", "info".to_string()),
            log_format: r.get("LOG_FORMAT", default_format),
            http: HttpConfig {
                addr: SocketAddr::new(host, port),
                shutdown_grace: r.get("SHUTDOWN_GRACE", Duration::from_secs(30)),
                request_timeout: r.get("REQUEST_TIMEOUT", Duration::from_secs(30)),
                body_limit: r.get("BODY_LIMIT", 1024 * 1024),
                trusted_proxies: r.get("TRUSTED_PROXIES", TrustedProxies::default()),
            },
        }
    }
}

impl DbConfig {
    pub fn read(r: &mut Reader<'_>) -> Self {
        Self {
            url: r.secret("DATABASE_URL", DEV_DATABASE_URL),
            max_connections: r.get("DATABASE_MAX_CONNECTIONS", 10),
            connect_timeout: r.get("DATABASE_CONNECT_TIMEOUT", Duration::from_secs(5)),
            acquire_timeout: r.get("DATABASE_ACQUIRE_TIMEOUT", Duration::from_secs(5)),
            statement_timeout: r.get("DATABASE_STATEMENT_TIMEOUT", Duration::from_secs(15)),
            migrate_on_start: r.get("MIGRATE_ON_START", true),
        }
    }
}
