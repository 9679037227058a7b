//! What every handler shares: the pool, the hasher, the keys, the configuration.

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::FromRef;
use kit::client_ip::TrustedProxies;
use sqlx::PgPool;

use crate::Config;
use crate::domain::TokenHasher;
use crate::hashing::Hasher;
use crate::jwt::Keys;

#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub pool: PgPool,
    pub hasher: Hasher,
    pub keys: Keys,
    pub tokens: TokenHasher,
    pub config: Config,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// A link into the web frontend, always from the configured public URL.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.config.public_url)
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl FromRef<AppState> for TrustedProxies {
    fn from_ref(state: &AppState) -> Self {
        state.config.common.http.trusted_proxies.clone()
    }
}
