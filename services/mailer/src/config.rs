//! The mailer's configuration: the shared settings plus `SLIPWAY_MAILER_…`.

use std::time::Duration;

use kit::config::{Common, ConfigErrors, DbConfig, Setting, Sources};
use kit::migrate::Migrations;
use kit::service::Service;
use secrecy::SecretString;

/// Where email goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// An SMTP server (the staging and prod default).
    Smtp,
    /// The development mailbox in the mailer's schema, shown at `/dev/mail` (the dev default).
    Mailbox,
}

impl Setting for Transport {
    const EXPECTED: &'static str = "smtp or mailbox";
    fn parse_setting(s: &str) -> Option<Self> {
        match s.trim() {
            "smtp" => Some(Self::Smtp),
            "mailbox" => Some(Self::Mailbox),
            _ => None,
        }
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587); required to succeed.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: dev and test only.
    None,
}

impl Setting for SmtpTls {
    const EXPECTED: &'static str = "starttls, tls or none";
    fn parse_setting(s: &str) -> Option<Self> {
        match s.trim() {
            "starttls" => Some(Self::Starttls),
            "tls" => Some(Self::Tls),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: SecretString,
    pub timeout: Duration,
    /// The name given in EHLO.
    pub hello: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    pub db: DbConfig,
    /// Which bus (`SLIPWAY_BUS_URL`): Postgres, or NATS JetStream with Postgres as its outbox.
    pub bus: bus::BusUrl,
    pub transport: Transport,
    pub smtp: SmtpConfig,
    /// `Name <address>` emails come from; its domain also names Message-IDs.
    pub from: String,
    pub site_name: String,
    pub public_url: String,
    pub concurrency: usize,
    pub lease: Duration,
    pub max_attempts: i32,
    pub backoff_base: Duration,
    pub poll: Duration,
}

impl Config {
    pub fn load(sources: &Sources) -> Result<Self, ConfigErrors> {
        let mut r = sources.reader(crate::NAME);
        let common = Common::read(&mut r, 8083);
        let production = common.environment.is_production_like();
        let default_transport = if production { Transport::Smtp } else { Transport::Mailbox };
        let username: Option<String> = r.optional("SMTP_USERNAME");
        let password = if username.is_some() {
            r.secret("SMTP_PASSWORD", "")
        } else {
            if r.optional::<String>("SMTP_PASSWORD").is_some() {
                r.error(
                    "SMTP_USERNAME",
                    "SMTP_PASSWORD is set but no user name: set SLIPWAY_MAILER_SMTP_USERNAME too",
                );
            }
            SecretString::from(String::new())
        };
        let config = Self {
            db: DbConfig::read(&mut r),
            bus: r.get("BUS_URL", bus::BusUrl::Postgres),
            transport: r.get("TRANSPORT", default_transport),
            smtp: SmtpConfig {
                host: r.get("SMTP_HOST", "localhost".to_string()),
                port: r.get("SMTP_PORT", 587),
                tls: r.get("SMTP_TLS", SmtpTls::Starttls),
                username,
                password,
                timeout: r.get("SMTP_TIMEOUT", Duration::from_secs(30)),
                hello: r.get("SMTP_HELLO", "localhost".to_string()),
            },
            from: r.get("FROM", "Slipway <no-reply@localhost>".to_string()),
            site_name: r.get("SITE_NAME", "Slipway".to_string()),
            public_url: r
                .get("PUBLIC_URL", "http://localhost:8080".to_string())
                .trim_end_matches('/')
                .to_string(),
            concurrency: r.get("CONCURRENCY", 8),
            lease: r.get("LEASE", Duration::from_secs(30)),
            max_attempts: r.get("MAX_ATTEMPTS", 10u32).try_into().unwrap_or(10),
            backoff_base: r.get("BACKOFF_BASE", Duration::from_secs(2)),
            poll: r.get("POLL", Duration::from_secs(5)),
            common,
        };
        if config.from.parse::<lettre::message::Mailbox>().is_err() {
            r.error("FROM", "expected a sender such as `Example <no-reply@example.com>`");
        }
        if production && config.transport == Transport::Mailbox {
            r.error("TRANSPORT", "the development mailbox is not for staging or prod: use smtp");
        }
        if production && config.smtp.tls == SmtpTls::None {
            r.error("SMTP_TLS", "unencrypted SMTP is for dev and test only: use starttls or tls");
        }
        r.finish()?;
        Ok(config)
    }

    /// The domain Message-IDs are made in: the sender address's.
    pub fn message_id_domain(&self) -> String {
        self.from
            .parse::<lettre::message::Mailbox>()
            .map(|m| m.email.domain().to_string())
            .unwrap_or_else(|_| "localhost".into())
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
