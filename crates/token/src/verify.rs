//! Verification: the signature by the key the header names, then expiry, issuer and audience.

use ed25519_dalek::VerifyingKey;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::{Claims, TokenError};

/// The key id a token's header names, once its algorithm is EdDSA.
pub fn key_id(token: &str) -> Result<String, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    if header.alg != Algorithm::EdDSA {
        return Err(TokenError::UnknownKey);
    }
    header.kid.ok_or(TokenError::UnknownKey)
}

/// Checks tokens for one issuer and audience.
#[derive(Debug, Clone)]
pub struct Verifier {
    validation: Validation,
}

impl Verifier {
    /// A verifier accepting tokens of `issuer` for `audience`.
    pub fn new(issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.required_spec_claims = ["exp", "iss", "aud", "sub"].map(String::from).into();
        // No grace: a token is expired from its `exp` second on.
        validation.leeway = 0;
        validation.reject_tokens_expiring_in_less_than = 1;
        Self { validation }
    }

    /// The claims of `token` if `key` signed it and it is current and for this issuer and
    /// audience.
    pub fn verify(&self, token: &str, key: &VerifyingKey) -> Result<Claims, TokenError> {
        let decoding = DecodingKey::from_ed_der(key.as_bytes());
        match jsonwebtoken::decode::<Claims>(token, &decoding, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => Err(match e.kind() {
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => TokenError::WrongAudience,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenError::UnknownKey,
                _ => TokenError::Malformed,
            }),
        }
    }
}
