//! Access tokens: JWTs signed with Ed25519 (EdDSA), and the JWKS that lets any service, in any
//! language, verify them. Several keys can verify at once, so a new key can take over signing
//! while tokens of the old one run out.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::JwtConfig;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: Uuid,
    pub exp: i64,
    pub iat: i64,
    pub jti: Uuid,
    /// The session (refresh token family) the token belongs to.
    pub sid: Uuid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("not a JWT")]
    Malformed,
    #[error("unsupported algorithm or unknown key")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
    #[error("expired")]
    Expired,
    #[error("wrong issuer or audience")]
    WrongAudience,
}

#[derive(Clone)]
pub struct Keys {
    signer: SigningKey,
    signer_kid: String,
    verifiers: BTreeMap<String, VerifyingKey>,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("signer_kid", &self.signer_kid)
            .field("kids", &self.verifiers.keys())
            .finish()
    }
}

/// A fresh Ed25519 private key as PKCS#8 PEM.
pub fn generate_pem() -> anyhow::Result<String> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    Ok(key.to_pkcs8_pem(Default::default()).context("encode key")?.to_string())
}

/// The key id: the RFC 7638 thumbprint of the public JWK.
pub fn kid(key: &VerifyingKey) -> String {
    let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
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
        let signer_kid = kid(&signer.verifying_key());
        verifiers.insert(signer_kid.clone(), signer.verifying_key());
        Ok(Self {
            signer,
            signer_kid,
            verifiers,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            ttl: config.access_ttl,
        })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn signer_kid(&self) -> &str {
        &self.signer_kid
    }

    /// Signs an access token for a user's session.
    pub fn issue(&self, user: Uuid, session: Uuid) -> String {
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
        let header = json!({ "alg": "EdDSA", "typ": "JWT", "kid": self.signer_kid });
        let signing_input = format!("{}.{}", b64_json(&header), b64_json(&claims));
        let signature = self.signer.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    /// Checks signature (by `kid`), expiry, issuer and audience.
    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header: Value = decode_json(h)?;
        if header["alg"] != "EdDSA" {
            return Err(JwtError::UnknownKey);
        }
        let key = header["kid"].as_str().and_then(|k| self.verifiers.get(k)).ok_or(JwtError::UnknownKey)?;
        let sig_bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
        let signature = Signature::from_slice(&sig_bytes).map_err(|_| JwtError::Malformed)?;
        key.verify_strict(format!("{h}.{p}").as_bytes(), &signature).map_err(|_| JwtError::BadSignature)?;
        let claims: Claims = decode_json(p)?;
        if claims.exp <= chrono::Utc::now().timestamp() {
            return Err(JwtError::Expired);
        }
        if claims.iss != self.issuer || claims.aud != self.audience {
            return Err(JwtError::WrongAudience);
        }
        Ok(claims)
    }

    /// The JWKS document: every key that verifies, the signer first.
    pub fn jwks(&self) -> Value {
        let mut kids: Vec<&String> = self.verifiers.keys().collect();
        kids.sort_by_key(|k| *k != &self.signer_kid);
        let keys: Vec<Value> = kids
            .into_iter()
            .map(|kid| {
                let x = URL_SAFE_NO_PAD.encode(self.verifiers[kid].as_bytes());
                json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig" })
            })
            .collect();
        json!({ "keys": keys })
    }
}

fn b64_json(value: &impl Serialize) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, JwtError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
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
    fn a_token_verifies_and_any_change_breaks_it() {
        let keys = Keys::new(&config(""), &generate_pem().expect("pem")).expect("keys");
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let token = keys.issue(user, session);
        let claims = keys.verify(&token).expect("valid");
        assert_eq!((claims.sub, claims.sid, claims.exp - claims.iat), (user, session, 900));

        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        let mut forged: Claims = decode_json(&parts[1]).expect("claims");
        forged.sub = Uuid::new_v4();
        parts[1] = b64_json(&forged);
        assert_eq!(keys.verify(&parts.join(".")), Err(JwtError::BadSignature));
        assert_eq!(keys.verify("a.b"), Err(JwtError::Malformed));

        let other = Keys::new(&config(""), &generate_pem().expect("pem")).expect("keys");
        assert_eq!(other.verify(&token), Err(JwtError::UnknownKey), "another key set does not know this kid");
    }

    #[test]
    fn a_previous_key_still_verifies_after_rotation_and_is_published() {
        let old_pem = generate_pem().expect("pem");
        let old = Keys::new(&config(""), &old_pem).expect("keys");
        let old_token = old.issue(Uuid::new_v4(), Uuid::new_v4());
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
