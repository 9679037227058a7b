//! Slipway's access tokens, in one place for every party: auth signs them, the gateway and any
//! Rust service verify them. EdDSA (Ed25519) JWTs on the `jsonwebtoken` crate: the claims, the
//! errors, key ids (RFC 7638 thumbprints), the JWKS document that lets a service in any
//! language verify them, and verification of signature, expiry, issuer and audience.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod keys;
mod verify;

pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use keys::{Signer, generate_pem, jwks, kid, parse_jwks};
pub use verify::{Verifier, key_id};

/// The audience tokens carry unless configured otherwise (`SLIPWAY_*_JWT_AUDIENCE`).
pub const DEFAULT_AUDIENCE: &str = "slipway";

/// The issuer tokens carry unless configured otherwise: the site's public URL, without a
/// trailing slash, so auth and the gateway derive the same one.
pub fn default_issuer(public_url: &str) -> String {
    public_url.trim_end_matches('/').to_string()
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user.
    pub sub: Uuid,
    pub exp: i64,
    pub iat: i64,
    pub jti: Uuid,
    /// The session (refresh token family) the token belongs to.
    pub sid: Uuid,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
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
