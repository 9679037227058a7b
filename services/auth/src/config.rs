//! Auth's configuration: the shared settings plus its own, read from `SLIPWAY_AUTH_…`.

use std::time::Duration;

use kit::config::{Common, ConfigErrors, DbConfig, Limit, Rate, Reader, Sources};
use kit::migrate::Migrations;
use kit::service::Service;
use secrecy::{ExposeSecret, SecretString};

pub use crate::jwt::JwtConfig;

/// The development default of the token key; staging and prod refuse it.
const DEV_TOKEN_KEY: &str = "dev-only-token-key-not-secret";

#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    pub db: DbConfig,
    /// Which bus (`SLIPWAY_BUS_URL`): Postgres, or NATS JetStream with Postgres as its outbox.
    pub bus: bus::BusUrl,
    /// The HMAC key under which one-time and refresh tokens are stored.
    pub token_key: SecretString,
    /// The site's public address; emailed links start with it (never with a request's Host).
    pub public_url: String,
    pub jwt: JwtConfig,
    pub sessions: SessionConfig,
    pub argon: ArgonConfig,
    pub limits: Limits,
    /// How long audit events are kept.
    pub audit_retention: Duration,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub refresh_ttl: Duration,
    /// How long an already-used refresh token is still honoured (parallel tabs) before its
    /// reuse is treated as theft.
    pub reuse_grace: Duration,
    pub activation_ttl: Duration,
    pub reset_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct ArgonConfig {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashes computed at once; more wait their turn off the async executor.
    pub concurrency: usize,
    /// Requests that may wait for a turn beyond those hashing; more are refused with 503.
    pub queue: usize,
    /// The longest a request waits for its turn before it is refused with 503.
    pub queue_wait: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub signup_ip: Option<Rate>,
    pub signup_email: Option<Rate>,
    pub login_ip: Option<Rate>,
    /// Failed logins on one account from all clients together; past it, clients that have
    /// failed on the account are refused (clients that have not are still checked).
    pub login_email: Option<Rate>,
    /// Failed logins by one client on one account before that client is locked out of it.
    pub lockout: Option<Rate>,
    pub resend_ip: Option<Rate>,
    pub resend_email: Option<Rate>,
    pub reset_ip: Option<Rate>,
    pub reset_email: Option<Rate>,
    /// Presenting an emailed link's token (activation, reset confirmation), per client and per token.
    pub confirm_ip: Option<Rate>,
    pub confirm_token: Option<Rate>,
    /// Password changes per signed-in user.
    pub change_user: Option<Rate>,
}

fn limit(r: &mut Reader<'_>, key: &str, max: u32, per_secs: u64) -> Option<Rate> {
    r.get(key, Limit(Some(Rate::new(max, Duration::from_secs(per_secs))))).0
}

impl Config {
    pub fn load(sources: &Sources) -> Result<Self, ConfigErrors> {
        let mut r = sources.reader(crate::NAME);
        let common = Common::read(&mut r, 8081);
        let public_url: String = r.get("PUBLIC_URL", "http://localhost:8080".to_string());
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            r.error("PUBLIC_URL", "expected an http:// or https:// URL such as https://example.com");
        }
        let public_url = public_url.trim_end_matches('/').to_string();
        let production = common.environment.is_production_like();
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let config = Self {
            db: DbConfig::read(&mut r),
            bus: r.get("BUS_URL", bus::BusUrl::Postgres),
            token_key: r.secret("TOKEN_KEY", DEV_TOKEN_KEY),
            jwt: JwtConfig {
                issuer: r.get("JWT_ISSUER", token::default_issuer(&public_url)),
                audience: r.get("JWT_AUDIENCE", token::DEFAULT_AUDIENCE.to_string()),
                access_ttl: r.get("ACCESS_TTL", Duration::from_secs(15 * 60)),
                key: r.secret("JWT_KEY", ""),
                previous_keys: r.get("JWT_PREVIOUS_KEYS", String::new()),
            },
            sessions: SessionConfig {
                refresh_ttl: r.get("REFRESH_TTL", Duration::from_secs(30 * 86_400)),
                reuse_grace: r.get("REFRESH_REUSE_GRACE", Duration::from_secs(10)),
                activation_ttl: r.get("ACTIVATION_TTL", Duration::from_secs(24 * 3600)),
                reset_ttl: r.get("RESET_TTL", Duration::from_secs(45 * 60)),
            },
            argon: ArgonConfig {
                memory_kib: r.get("ARGON2_MEMORY_KIB", 19_456),
                iterations: r.get("ARGON2_ITERATIONS", 2),
                parallelism: r.get("ARGON2_PARALLELISM", 1),
                concurrency: r.get("HASH_CONCURRENCY", cores),
                queue: r.get("HASH_QUEUE", cores * 16),
                queue_wait: r.get("HASH_QUEUE_WAIT", Duration::from_secs(3)),
            },
            limits: Limits {
                signup_ip: limit(&mut r, "LIMIT_SIGNUP_IP", 20, 3600),
                signup_email: limit(&mut r, "LIMIT_SIGNUP_EMAIL", 5, 3600),
                login_ip: limit(&mut r, "LIMIT_LOGIN_IP", 60, 60),
                login_email: limit(&mut r, "LIMIT_LOGIN_EMAIL", 20, 15 * 60),
                lockout: limit(&mut r, "LOCKOUT", 5, 15 * 60),
                resend_ip: limit(&mut r, "LIMIT_RESEND_IP", 10, 3600),
                resend_email: limit(&mut r, "LIMIT_RESEND_EMAIL", 3, 3600),
                reset_ip: limit(&mut r, "LIMIT_RESET_IP", 10, 3600),
                reset_email: limit(&mut r, "LIMIT_RESET_EMAIL", 3, 3600),
                confirm_ip: limit(&mut r, "LIMIT_CONFIRM_IP", 30, 3600),
                confirm_token: limit(&mut r, "LIMIT_CONFIRM_TOKEN", 5, 3600),
                change_user: limit(&mut r, "LIMIT_CHANGE_USER", 10, 3600),
            },
            audit_retention: r.get("AUDIT_RETENTION", Duration::from_secs(365 * 86_400)),
            public_url,
            common,
        };
        if production && (config.argon.memory_kib < 19_456 || config.argon.iterations < 2) {
            r.error(
                "ARGON2_MEMORY_KIB",
                "below the OWASP minimum (19456 KiB and 2 iterations) in staging or prod",
            );
        }
        for (key, problem) in
            crate::jwt::check_pems(config.jwt.key.expose_secret(), &config.jwt.previous_keys)
        {
            r.error(key, problem);
        }
        if config.argon.concurrency == 0 {
            r.error("HASH_CONCURRENCY", "expected at least 1");
        }
        r.finish()?;
        Ok(config)
    }
}

impl Service for Config {
    const NAME: &'static str = crate::NAME;

    fn load(sources: &Sources) -> Result<Self, ConfigErrors> {
        Config::load(sources)
    }

    fn common(&self) -> &Common {
        &self.common
    }

    fn migrations() -> Vec<Migrations> {
        vec![bus::migrations(), crate::migrations()]
    }

    type App = crate::Application;

    async fn build(self) -> anyhow::Result<crate::Application> {
        crate::Application::build(self).await
    }
}
