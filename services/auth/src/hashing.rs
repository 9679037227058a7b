//! Password hashing with argon2id, off the async executor and behind a concurrency limit, so a
//! login flood queues here instead of starving every other endpoint; the queue is bounded in
//! length and in wait, so a flood is refused (503, `Retry-After`) instead of queueing for ever.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::config::ArgonConfig;
use crate::domain::Password;

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// It matches; `rehash` when the stored hash is weaker than the current parameters.
    Match {
        rehash: bool,
    },
    NoMatch,
}

/// Why a hash was not computed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The queue is full, or a turn did not come within the allowed wait.
    #[error("the password hasher is busy")]
    Busy,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

#[derive(Debug, Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// Requests waiting for or holding a permit, and how many may.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    max_wait: Duration,
    /// A hash of a random password, verified when the account does not exist, so an unknown
    /// email costs the same time as a wrong password.
    dummy: Arc<str>,
}

impl Hasher {
    pub fn new(config: &ArgonConfig) -> anyhow::Result<Self> {
        let params = Params::new(config.memory_kib, config.iterations, config.parallelism, None)
            .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        let dummy = hash_blocking(&params, crate::domain::SecretToken::generate().expose())?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(config.concurrency)),
            queued: Arc::new(AtomicUsize::new(0)),
            max_queued: config.concurrency + config.queue,
            max_wait: config.queue_wait,
            dummy: dummy.into(),
        })
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Hashes a new password (PHC string with a fresh salt).
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        self.hash_str(password.expose().to_string()).await
    }

    /// Hashes an accepted password again, with the current parameters.
    pub async fn hash_secret(&self, password: &SecretString) -> Result<String, HashError> {
        self.hash_str(password.expose_secret().to_string()).await
    }

    async fn hash_str(&self, password: String) -> Result<String, HashError> {
        let params = self.params.clone();
        self.run(move || hash_blocking(&params, &password)).await
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no account.
    pub async fn verify(&self, password: &SecretString, stored: Option<&str>) -> Result<Verified, HashError> {
        let exists = stored.is_some();
        let stored = stored.map_or_else(|| self.dummy.to_string(), str::to_string);
        let password = password.expose_secret().to_string();
        let params = self.params.clone();
        let verified = self
            .run(move || {
                let parsed =
                    PasswordHash::new(&stored).map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
                let ok = argon(&params).verify_password(password.as_bytes(), &parsed).is_ok();
                Ok(ok.then(|| weaker_than(&parsed, &params)))
            })
            .await?;
        Ok(match verified {
            Some(rehash) if exists => Verified::Match { rehash },
            _ => Verified::NoMatch,
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, HashError> {
        let _slot = QueueSlot::take(&self.queued, self.max_queued).ok_or(HashError::Busy)?;
        let _permit = tokio::time::timeout(self.max_wait, self.permits.acquire())
            .await
            .map_err(|_| HashError::Busy)?
            .context("hasher closed")?;
        Ok(tokio::task::spawn_blocking(work).await.context("hashing task failed")??)
    }
}

/// A place in the hasher's queue, given back when dropped.
struct QueueSlot<'a>(&'a AtomicUsize);

impl<'a> QueueSlot<'a> {
    fn take(queued: &'a AtomicUsize, max: usize) -> Option<Self> {
        queued.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        Some(Self(queued))
    }
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn argon(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_blocking(params: &Params, password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let hash = argon(params)
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(hash.to_string())
}

/// Whether a stored hash used weaker settings (or another algorithm) than `current`.
fn weaker_than(stored: &PasswordHash<'_>, current: &Params) -> bool {
    if stored.algorithm != argon2::ARGON2ID_IDENT {
        return true;
    }
    match Params::try_from(stored) {
        Ok(p) => {
            p.m_cost() < current.m_cost() || p.t_cost() < current.t_cost() || p.p_cost() < current.p_cost()
        }
        Err(_) => true,
    }
}
