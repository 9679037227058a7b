//! Auth's signing keys: the current signer and the public keys of earlier ones, read from
//! the configuration, so a new key can take over signing while tokens of the old one run out.
//! Tokens themselves (claims, key ids, the JWKS, verification) are the shared `token` crate's.

use std::collections::BTreeMap;
use std::time::Duration;

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use secrecy::SecretString;
use serde_json::Value;
use uuid::Uuid;

pub use token::{Claims, TokenError, kid};

/// Auth's token settings (`SLIPWAY_AUTH_JWT_*`, `_ACCESS_TTL`), read by `config`.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    /// The signing key, an Ed25519 private key in PKCS#8 PEM. Empty in dev and test: a key is
    /// generated once and kept in the database.
    pub key: SecretString,
    /// Public keys (SPKI PEM, concatenated) of earlier signers, still accepted and published
    /// until the tokens they signed have expired.
    pub previous_keys: String,
}

#[derive(Clone)]
pub struct Keys {
    signer: token::Signer,
    verifiers: BTreeMap<String, VerifyingKey>,
    verifier: token::Verifier,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("signer_kid", &self.signer.kid())
            .field("kids", &self.verifiers.keys())
            .finish()
    }
}

/// A fresh Ed25519 private key as PKCS#8 PEM.
pub fn generate_pem() -> anyhow::Result<String> {
    token::generate_pem().map_err(anyhow::Error::msg)
}

/// Checks configured keys parse; returns `(setting, message)` for each that does not.
pub fn check_pems(signer_pem: &str, previous: &str) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    if !signer_pem.trim().is_empty()
        && let Err(e) = parse_signer(signer_pem)
    {
        problems.push(("JWT_KEY", e));
    }
    if let Err(e) = parse_previous(previous) {
        problems.push(("JWT_PREVIOUS_KEYS", e));
    }
    problems
}

fn parse_signer(pem: &str) -> Result<SigningKey, String> {
    SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| {
        format!("expected an Ed25519 private key in PKCS#8 PEM (`openssl genpkey -algorithm ed25519`): {e}")
    })
}

fn parse_previous(pems: &str) -> Result<Vec<VerifyingKey>, String> {
    let blocks = pem_blocks(pems);
    if blocks.is_empty() && !pems.trim().is_empty() {
        return Err(
            "expected Ed25519 public keys in PEM, one or more `-----BEGIN PUBLIC KEY-----` blocks".into()
        );
    }
    blocks
        .iter()
        .map(|block| {
            VerifyingKey::from_public_key_pem(block).map_err(|e| {
                format!("expected Ed25519 public keys in PEM (`openssl pkey -in old.pem -pubout`): {e}")
            })
        })
        .collect()
}

impl Keys {
    /// The signer from `signer_pem`; earlier signers' public keys from the config.
    pub fn new(config: &JwtConfig, signer_pem: &str) -> anyhow::Result<Self> {
        let signer = parse_signer(signer_pem).map_err(|e| anyhow::anyhow!("SLIPWAY_AUTH_JWT_KEY: {e}"))?;
        let mut verifiers = BTreeMap::new();
        let previous = parse_previous(&config.previous_keys);
        for key in previous.map_err(|e| anyhow::anyhow!("SLIPWAY_AUTH_JWT_PREVIOUS_KEYS: {e}"))? {
            verifiers.insert(kid(&key), key);
        }
        verifiers.insert(kid(&signer.verifying_key()), signer.verifying_key());
        Ok(Self {
            signer: token::Signer::new(&signer).map_err(anyhow::Error::msg)?,
            verifiers,
            verifier: token::Verifier::new(&config.issuer, &config.audience),
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            ttl: config.access_ttl,
        })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn signer_kid(&self) -> &str {
        self.signer.kid()
    }

    /// Signs an access token for a user's session.
    pub fn issue(&self, user: Uuid, session: Uuid) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user,
            exp: now + i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2),
            iat: now,
            jti: Uuid::now_v7(),
            sid: session,
        };
        self.signer.sign(&claims).map_err(anyhow::Error::msg)
    }

    /// Checks signature (by `kid`), expiry, issuer and audience.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let kid = token::key_id(token)?;
        let key = self.verifiers.get(&kid).ok_or(TokenError::UnknownKey)?;
        self.verifier.verify(token, key)
    }

    /// The JWKS document: every key that verifies, the signer first.
    pub fn jwks(&self) -> Value {
        let signer_kid = self.signer.kid();
        let signer = std::iter::once(&self.verifiers[signer_kid]);
        token::jwks(
            signer.chain(self.verifiers.iter().filter(|(k, _)| k.as_str() != signer_kid).map(|(_, v)| v)),
        )
    }
}

/// Splits concatenated PEM blocks.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END") {
            blocks.push(std::mem::take(&mut current));
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::pkcs8::EncodePublicKey;

    fn config(previous: &str) -> JwtConfig {
        JwtConfig {
            issuer: "https://example.com".into(),
            audience: "slipway".into(),
            access_ttl: Duration::from_secs(900),
            key: Default::default(),
            previous_keys: previous.into(),
        }
    }

    #[test]
    fn a_token_verifies_with_its_session_and_ttl_and_only_against_its_own_key_set() {
        let keys = Keys::new(&config(""), &generate_pem().expect("pem")).expect("keys");
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let token = keys.issue(user, session).expect("token");
        let claims = keys.verify(&token).expect("valid");
        assert_eq!((claims.sub, claims.sid, claims.exp - claims.iat), (user, session, 900));
        assert_eq!(keys.verify("a.b"), Err(TokenError::Malformed));

        let other = Keys::new(&config(""), &generate_pem().expect("pem")).expect("keys");
        assert_eq!(
            other.verify(&token),
            Err(TokenError::UnknownKey),
            "another key set does not know this kid"
        );
    }

    #[test]
    fn a_previous_key_still_verifies_after_rotation_and_is_published() {
        let old_pem = generate_pem().expect("pem");
        let old = Keys::new(&config(""), &old_pem).expect("keys");
        let old_token = old.issue(Uuid::new_v4(), Uuid::new_v4()).expect("token");
        let old_public = SigningKey::from_pkcs8_pem(&old_pem)
            .expect("key")
            .verifying_key()
            .to_public_key_pem(Default::default())
            .expect("pem");

        let rotated = Keys::new(&config(&old_public), &generate_pem().expect("pem")).expect("keys");
        assert!(rotated.verify(&old_token).is_ok());
        assert_ne!(rotated.signer_kid(), old.signer_kid());
        let jwks = rotated.jwks();
        let kids: Vec<&str> =
            jwks["keys"].as_array().expect("keys").iter().map(|k| k["kid"].as_str().expect("kid")).collect();
        assert_eq!(kids, vec![rotated.signer_kid(), old.signer_kid()], "signer first");
    }
}
