//! Auth's configuration: the shared settings plus its own, read from `SLIPWAY_AUTH_…`.

use kit::config::{Common, ConfigErrors, DbConfig, Sources};
use kit::migrate::Migrations;
use kit::service::{Service, Shutdown};
use secrecy::SecretString;

/// The development default of the token key; staging and prod refuse it.
const DEV_TOKEN_KEY: &str = "dev-only-token-key-not-secret";

#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    pub db: DbConfig,
    /// The HMAC key for stored one-time tokens (activation, reset).
    pub token_key: SecretString,
}

impl Config {
    pub fn load(sources: &Sources) -> Result<Self, ConfigErrors> {
        let mut r = sources.reader(crate::NAME);
        let config = Self {
            common: Common::read(&mut r, 8081),
            db: DbConfig::read(&mut r),
            token_key: r.secret("TOKEN_KEY", DEV_TOKEN_KEY),
        };
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

    fn db(&self) -> Option<&DbConfig> {
        Some(&self.db)
    }

    fn migrations() -> Option<Migrations> {
        Some(crate::migrations())
    }

    async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        crate::Application::build(self).await?.run_until(shutdown).await
    }
}
