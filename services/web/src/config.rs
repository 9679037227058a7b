//! The web's configuration: the shared settings plus `SLIPWAY_WEB_…`.

use kit::config::{Common, ConfigErrors, DbConfig, Sources};
use kit::migrate::Migrations;
use kit::service::Service;
use secrecy::SecretString;

const DEV_COOKIE_KEY: &str = "dev-only-cookie-key-not-secret";

#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    pub db: DbConfig,
    /// Where the auth API answers (server to server).
    pub auth_url: String,
    /// Where the mailer answers; the dev mailbox page reads it (dev only).
    pub mailer_url: String,
    /// The HMAC key of CSRF tokens.
    pub cookie_key: SecretString,
    pub site_name: String,
    /// Who may open `/dev/mail`.
    pub dev_mailbox: DevMailbox,
}

/// Who may read the dev mailbox at `/dev/mail` (every email the stack kept, reset links
/// included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevMailbox {
    /// Not served (always, in staging and prod).
    Off,
    /// Served to visitors on this machine only (a loopback address): the default in dev and test.
    Local,
    /// Served to anyone who reaches the site: an explicit opt-in for a stack published only on
    /// loopback, where the engine's port forwarding hides the visitor's address.
    Open,
}

impl kit::config::Setting for DevMailbox {
    const EXPECTED: &'static str = "off, local or open";

    fn parse_setting(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Some(Self::Off),
            "local" => Some(Self::Local),
            "open" => Some(Self::Open),
            _ => None,
        }
    }
}

impl Config {
    pub fn load(sources: &Sources) -> Result<Self, ConfigErrors> {
        let mut r = sources.reader(crate::NAME);
        let common = Common::read(&mut r, 8082);
        let trim = |s: String| s.trim_end_matches('/').to_string();
        let config = Self {
            db: DbConfig::read(&mut r),
            auth_url: trim(r.get("AUTH_URL", "http://127.0.0.1:8081".to_string())),
            mailer_url: trim(r.get("MAILER_URL", "http://127.0.0.1:8083".to_string())),
            cookie_key: r.secret("COOKIE_KEY", DEV_COOKIE_KEY),
            site_name: r.get("SITE_NAME", "Slipway".to_string()),
            dev_mailbox: r.get(
                "DEV_MAILBOX",
                if common.environment.is_production_like() { DevMailbox::Off } else { DevMailbox::Local },
            ),
            common,
        };
        if config.common.environment.is_production_like() && config.dev_mailbox != DevMailbox::Off {
            r.error("DEV_MAILBOX", "the dev mailbox is never served in staging or prod: use off");
        }
        r.finish()?;
        Ok(config)
    }

    /// Outside dev, cookies are `Secure` and `__Host-` prefixed (HTTPS only, this host only).
    pub fn secure_cookies(&self) -> bool {
        self.common.environment != kit::config::Environment::Dev
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
        vec![crate::migrations()]
    }

    type App = crate::Application;

    async fn build(self) -> anyhow::Result<crate::Application> {
        crate::Application::build(self).await
    }
}
