//! What every handler shares: the pool, the hasher, the keys, the configuration.

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::FromRef;
use kit::client_ip::TrustedProxies;
use kit::config::Rate;
use sqlx::PgPool;

use crate::Config;
use crate::context::RequestCtx;
use crate::domain::{Email, TokenHasher};
use crate::error::ApiError;
use crate::hashing::Hasher;
use crate::jwt::Keys;
use crate::store::limiter::{self, Decision};

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

    /// Counts this request against a per-IP and a per-email limit of one flow; refuses with
    /// 429 if either is exceeded.
    pub async fn limit(
        &self,
        flow: &str,
        ctx: &RequestCtx,
        email: &Email,
        per_ip: Option<Rate>,
        per_email: Option<Rate>,
    ) -> Result<(), ApiError> {
        self.limit_by(flow, ctx, [(None, per_ip), (Some(format!("email:{email}")), per_email)]).await
    }

    /// Counts this request against limits of one flow, each keyed by the client's address
    /// (`None`) or by a given key; refuses with 429 if any is exceeded.
    pub async fn limit_by<const N: usize>(
        &self,
        flow: &str,
        ctx: &RequestCtx,
        checks: [(Option<String>, Option<Rate>); N],
    ) -> Result<(), ApiError> {
        let mut retry_after = None;
        for (key, rate) in checks {
            let Some(rate) = rate else { continue };
            let key = match key {
                Some(key) => format!("{flow}:{key}"),
                None => format!("{flow}:ip:{}", kit::client_ip::bucket(ctx.ip)),
            };
            if let Decision::Limited { retry_after: s } = limiter::hit(&self.pool, &key, rate).await? {
                retry_after = Some(retry_after.map_or(s, |r: u64| r.max(s)));
            }
        }
        match retry_after {
            Some(retry_after) => {
                tracing::info!(flow, %ctx.ip, retry_after, "rate limited");
                Err(ApiError::RateLimited { retry_after })
            }
            None => Ok(()),
        }
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
