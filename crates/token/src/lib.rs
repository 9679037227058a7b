//! Slipway's access tokens, in one place for every party: auth signs them, the gateway and any
//! Rust service verify them. EdDSA (Ed25519) JWTs on the `jsonwebtoken` crate: the claims, the
//! errors, key ids (RFC 7638 thumbprints), the JWKS document that lets a service in any
//! language verify them, and verification of signature, expiry, issuer and audience.

#![warn(missing_docs, unreachable_pub)]

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
    /// The issuer: the site's public URL by default.
    pub iss: String,
    /// The audience the token is for.
    pub aud: String,
    /// The user.
    pub sub: Uuid,
    /// When it expires (Unix seconds): refused from this second on.
    pub exp: i64,
    /// When it was issued (Unix seconds).
    pub iat: i64,
    /// The token's own id.
    pub jti: Uuid,
    /// The session (refresh token family) the token belongs to.
    pub sid: Uuid,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, or claims that do not parse.
    #[error("not a JWT")]
    Malformed,
    /// Not EdDSA, or signed by a key the verifier does not know.
    #[error("unsupported algorithm or unknown key")]
    UnknownKey,
    /// The signature does not match the token.
    #[error("bad signature")]
    BadSignature,
    /// Past its `exp`.
    #[error("expired")]
    Expired,
    /// Issued by another issuer, or for another audience.
    #[error("wrong issuer or audience")]
    WrongAudience,
}
