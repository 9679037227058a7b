//! Keys: generating one, its id, the JWKS document that publishes the public halves, reading
//! such a document back, and signing a token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::Claims;

/// A fresh Ed25519 private key as PKCS#8 PEM.
pub fn generate_pem() -> Result<String, String> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    key.to_pkcs8_pem(Default::default()).map(|pem| pem.to_string()).map_err(|e| format!("encode key: {e}"))
}

/// The key id: the RFC 7638 thumbprint of the public JWK.
pub fn kid(key: &VerifyingKey) -> String {
    let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The JWKS document publishing `keys`, in the order given (the signer first, by convention).
pub fn jwks<'k>(keys: impl IntoIterator<Item = &'k VerifyingKey>) -> Value {
    let keys: Vec<Value> = keys
        .into_iter()
        .map(|key| {
            let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
            json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid(key), "alg": "EdDSA", "use": "sig" })
        })
        .collect();
    json!({ "keys": keys })
}

/// The Ed25519 keys of a JWKS document, by key id. Entries of other types, and ones whose key
/// does not decode, are skipped (a JWKS may publish keys for other uses).
pub fn parse_jwks(doc: &Value) -> Vec<(String, VerifyingKey)> {
    doc["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|k| k["kty"] == "OKP" && k["crv"] == "Ed25519")
        .filter_map(|k| {
            let kid = k["kid"].as_str()?;
            let bytes = URL_SAFE_NO_PAD.decode(k["x"].as_str()?).ok()?;
            let key = VerifyingKey::from_bytes(&<[u8; 32]>::try_from(bytes.as_slice()).ok()?).ok()?;
            Some((kid.to_string(), key))
        })
        .collect()
}

/// Signs tokens with one key, its header naming the key's id.
#[derive(Clone)]
pub struct Signer {
    kid: String,
    encoding: EncodingKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer with `key`, whose id it puts in every token's header.
    pub fn new(key: &SigningKey) -> Result<Self, String> {
        let der = key.to_pkcs8_der().map_err(|e| format!("encode key: {e}"))?;
        Ok(Self { kid: kid(&key.verifying_key()), encoding: EncodingKey::from_ed_der(der.as_bytes()) })
    }

    /// The id of the key that signs.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A signed token for `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| format!("sign: {e}"))
    }
}
