//! Access tokens verified at the edge against auth's JWKS, so services behind protected
//! routes get `X-User-Id` and never see an unverified identity.
//!
//! The JWKS is fetched with a timeout, cached, fetched again every `SLIPWAY_GATEWAY_JWKS_REFRESH`
//! once in use (so a key auth stopped publishing stops being trusted), and at most once per
//! [`REFETCH_AFTER`] when a token names an unknown key, whether or not the last fetch worked
//! (so an unreachable auth is not asked again on every request). A failed fetch keeps the
//! keys already known.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use token::{TokenError, Verifier, VerifyingKey};

#[derive(Debug)]
pub struct EdgeAuth {
    jwks_url: String,
    verifier: Verifier,
    http: reqwest_like::Client,
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    keys: HashMap<String, VerifyingKey>,
    /// When a fetch was last started, successful or not.
    attempted: Option<Instant>,
    /// Whether the keys were ever fetched: only then are they kept fresh in the background.
    fetched: bool,
}

/// How often an unknown `kid` may trigger a refetch.
const REFETCH_AFTER: Duration = Duration::from_secs(10);
/// How long a JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

mod reqwest_like {
    //! A tiny HTTP GET for the JWKS over hyper's client.
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client as Hyper;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;

    #[derive(Debug, Clone)]
    pub struct Client(Hyper<HttpConnector, Empty<bytes::Bytes>>);

    impl Client {
        pub fn new() -> Self {
            Self(Hyper::builder(TokioExecutor::new()).build_http())
        }

        pub async fn get_json(
            &self,
            url: &str,
            timeout: std::time::Duration,
        ) -> anyhow::Result<serde_json::Value> {
            let res = tokio::time::timeout(timeout, self.0.get(url.parse()?))
                .await
                .map_err(|_| anyhow::anyhow!("{url} did not answer within {timeout:?}"))??;
            anyhow::ensure!(res.status().is_success(), "{url} answered {}", res.status());
            let body = res.into_body().collect().await?.to_bytes();
            Ok(serde_json::from_slice(&body)?)
        }
    }
}

impl EdgeAuth {
    pub fn new(jwks_url: &str, issuer: &str, audience: &str) -> Self {
        Self {
            jwks_url: jwks_url.into(),
            verifier: Verifier::new(issuer, audience),
            http: reqwest_like::Client::new(),
            cache: Mutex::default(),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fetches the JWKS again if it was ever fetched (called periodically).
    pub async fn keep_fresh(&self) {
        {
            let mut cache = self.cache();
            if !cache.fetched {
                return;
            }
            cache.attempted = Some(Instant::now());
        }
        self.fetch_logged().await;
    }

    async fn fetch_logged(&self) {
        if let Err(error) = self.fetch().await {
            tracing::warn!(error = format!("{error:#}"), url = %self.jwks_url, "cannot fetch the JWKS; keeping the known keys");
        }
    }

    async fn fetch(&self) -> anyhow::Result<()> {
        let jwks = self.http.get_json(&self.jwks_url, FETCH_TIMEOUT).await?;
        let keys: HashMap<String, VerifyingKey> = token::parse_jwks(&jwks).into_iter().collect();
        let mut cache = self.cache();
        cache.keys = keys;
        cache.fetched = true;
        Ok(())
    }

    /// The key, or whether this caller may fetch the JWKS again (claimed under the lock, so
    /// one caller per window fetches).
    fn key(&self, kid: &str) -> (Option<VerifyingKey>, bool) {
        let mut cache = self.cache();
        if let Some(key) = cache.keys.get(kid) {
            return (Some(*key), false);
        }
        let may_refetch = cache.attempted.is_none_or(|at| at.elapsed() >= REFETCH_AFTER);
        if may_refetch {
            cache.attempted = Some(Instant::now());
        }
        (None, may_refetch)
    }

    /// The user id of a valid token, or why not.
    pub async fn verify(&self, token: &str) -> Result<String, TokenError> {
        let kid = token::key_id(token)?;
        let key = match self.key(&kid) {
            (Some(key), _) => key,
            (None, true) => {
                self.fetch_logged().await;
                self.key(&kid).0.ok_or(TokenError::UnknownKey)?
            }
            (None, false) => return Err(TokenError::UnknownKey),
        };
        self.verifier.verify(token, &key).map(|claims| claims.sub.to_string())
    }
}
