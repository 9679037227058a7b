//! The settings every service has: environment, logging, HTTP listener, limits, Postgres.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};

use super::{ConfigErrors, Environment, Reader, Setting, Sources};
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
    /// Where the service listens (`SLIPWAY_<SCOPE>_HOST` and `_PORT`).
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
    /// The connection URL; secret because it may hold the owner's password.
    pub url: SecretString,
    /// The pool's size.
    pub max_connections: u32,
    /// How long opening a connection may take before the attempt fails.
    pub connect_timeout: Duration,
    /// How long a request waits for a free connection before it gets 503.
    pub acquire_timeout: Duration,
    /// Postgres's `statement_timeout` on every pooled connection.
    pub statement_timeout: Duration,
    /// Apply this service's migrations when it starts (under the migration lock).
    pub migrate_on_start: bool,
    /// The service's own role, which it connects as instead of the URL's user (the owner,
    /// which only migrations use). `None`: the service connects as the URL's user.
    pub role: Option<DbRole>,
}

/// A service's own database role: rights on the service's schema and the bus's functions
/// only. `slipway migrate up` creates it and grants exactly that (kit::db::provision).
#[derive(Debug, Clone)]
pub struct DbRole {
    /// The role's name, checked by [`DbRole::valid_name`].
    pub name: String,
    /// The role's password (a secret, set by `slipway migrate up`).
    pub password: SecretString,
}

impl DbRole {
    /// A name Postgres takes unquoted and this code can quote safely: lowercase letters,
    /// digits and underscores, starting with a letter or underscore, at most 63 bytes.
    pub fn valid_name(name: &str) -> bool {
        let mut bytes = name.bytes();
        bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
            && name.len() <= 63
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }
}

/// What every service reads: call [`Common::read`] first, then the service's own settings.
#[derive(Debug, Clone)]
pub struct Common {
    /// Which environment this is (`SLIPWAY_ENV`); prod when unset.
    pub environment: Environment,
    /// Which release this is (`SLIPWAY_RELEASE`; `slipway deploy` sets the image tag), as
    /// `/healthz` and the start-up log line say.
    pub release: String,
    /// An `EnvFilter` directive such as `info` or `auth=debug,info`.
    pub log: String,
    /// Pretty logs for people, JSON for collectors (the default outside dev and test).
    pub log_format: LogFormat,
    /// The listener and the limits every request is held to.
    pub http: HttpConfig,
}

/// The database URL `slipway dev` and the compose stack use on a developer's machine.
const DEV_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/slipway";

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
            release: r.get("RELEASE", "dev".to_string()),
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

/// The URL with `password` in it, or `None` if it has its own password already.
fn with_password(url: &str, password: &str) -> Result<Option<String>, String> {
    let mut parsed = url::Url::parse(url)
        .map_err(|_| "expected a URL such as postgres://user@host:5432/database".to_string())?;
    if parsed.password().is_some() {
        return Ok(None);
    }
    if parsed.username().is_empty() || parsed.set_password(Some(password)).is_err() {
        return Err("SLIPWAY_DATABASE_PASSWORD is set, but this URL names no user to give it to".into());
    }
    Ok(Some(parsed.into()))
}

impl DbConfig {
    /// Only the database settings of the service `scope`: what a one-shot migration needs,
    /// without the service's other settings and secrets.
    pub fn load(sources: &Sources, scope: &str) -> Result<Self, ConfigErrors> {
        let mut r = sources.reader(scope);
        let db = Self::read_settings(&mut r);
        r.finish_part()?;
        Ok(db)
    }

    /// `DATABASE_PASSWORD` goes into a `DATABASE_URL` that carries no password of its own, so
    /// the URL can sit in a compose file and the password in secrets.env or a Docker secret.
    pub fn read(r: &mut Reader<'_>) -> Self {
        let db = Self::read_settings(r);
        if db.role.is_some() && db.migrate_on_start {
            r.error(
                "MIGRATE_ON_START",
                "must be false with DATABASE_ROLE: the service's own role may not change its schema; \
                 `slipway migrate up` applies migrations as the database's owner",
            );
        }
        db
    }

    fn read_settings(r: &mut Reader<'_>) -> Self {
        let mut url = r.secret("DATABASE_URL", DEV_DATABASE_URL);
        if let Some(password) = r.optional::<String>("DATABASE_PASSWORD").map(SecretString::from) {
            if r.environment().is_production_like() && password.expose_secret().contains("CHANGE-ME") {
                r.error("DATABASE_PASSWORD", "is the example value from secrets.env.example");
            }
            match with_password(url.expose_secret(), password.expose_secret()) {
                Ok(Some(joined)) => url = SecretString::from(joined),
                Ok(None) => {}
                Err(why) => r.error("DATABASE_URL", why),
            }
        }
        let migrate_on_start = r.get("MIGRATE_ON_START", true);
        let role = read_role(r);
        Self {
            url,
            max_connections: r.get("DATABASE_MAX_CONNECTIONS", 10),
            connect_timeout: r.get("DATABASE_CONNECT_TIMEOUT", Duration::from_secs(5)),
            acquire_timeout: r.get("DATABASE_ACQUIRE_TIMEOUT", Duration::from_secs(5)),
            statement_timeout: r.get("DATABASE_STATEMENT_TIMEOUT", Duration::from_secs(15)),
            migrate_on_start,
            role,
        }
    }

    /// The same database as the URL's user (the owner): what migrations and operators' tools
    /// connect as.
    pub fn as_owner(&self) -> Self {
        Self { role: None, ..self.clone() }
    }
}

/// `DATABASE_ROLE` and `DATABASE_ROLE_PASSWORD`, given together or not at all.
fn read_role(r: &mut Reader<'_>) -> Option<DbRole> {
    let name = r.optional::<String>("DATABASE_ROLE").filter(|n| !n.trim().is_empty());
    let password = r.optional::<String>("DATABASE_ROLE_PASSWORD").map(SecretString::from);
    match (name, password) {
        (None, None) => None,
        (None, Some(_)) => {
            r.error("DATABASE_ROLE_PASSWORD", "is set, but DATABASE_ROLE (the role it belongs to) is not");
            None
        }
        (Some(_), None) => {
            r.error(
                "DATABASE_ROLE_PASSWORD",
                "required with DATABASE_ROLE (give it, or a _FILE naming a secret)",
            );
            None
        }
        (Some(name), Some(password)) => {
            if !DbRole::valid_name(&name) {
                r.error(
                    "DATABASE_ROLE",
                    "expected lowercase letters, digits and underscores, such as slipway_auth",
                );
            }
            if r.environment().is_production_like() && password.expose_secret().contains("CHANGE-ME") {
                r.error("DATABASE_ROLE_PASSWORD", "is the example value from secrets.env.example");
            }
            Some(DbRole { name, password })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_password;

    #[test]
    fn a_password_goes_into_a_url_that_has_none() {
        let url =
            with_password("postgres://slipway@postgres:5432/slipway", "p@ss/word").expect("a valid URL");
        assert_eq!(url.as_deref(), Some("postgres://slipway:p%40ss%2Fword@postgres:5432/slipway"));
    }

    #[test]
    fn a_url_with_its_own_password_keeps_it() {
        assert_eq!(with_password("postgres://u:mine@h/db", "other").expect("a valid URL"), None);
    }

    #[test]
    fn a_password_without_a_user_is_an_error() {
        assert!(with_password("postgres://h/db", "pw").is_err());
        assert!(with_password("not a url", "pw").is_err());
    }
}
