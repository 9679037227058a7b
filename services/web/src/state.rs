//! What every page handler shares.

use std::ops::Deref;
use std::sync::Arc;

use sqlx::PgPool;

use crate::Config;
use crate::auth_client::AuthClient;
use crate::csrf::Csrf;

#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub pool: PgPool,
    pub auth: AuthClient,
    pub csrf: Csrf,
    pub config: Config,
    pub http: reqwest::Client,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl axum::extract::FromRef<AppState> for kit::client_ip::TrustedProxies {
    fn from_ref(state: &AppState) -> Self {
        state.config.common.http.trusted_proxies.clone()
    }
}
