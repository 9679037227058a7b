//! One-time secrets handed to a user (activation, password reset, refresh): 256 bits from the
//! OS RNG, shown once, and stored only as an HMAC-SHA-256 under the service's token key.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// What a token may be used for; a token of one purpose never passes for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Activation,
    PasswordReset,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Activation => "activation",
            Self::PasswordReset => "password_reset",
        }
    }
}

/// A token as the user holds it. Debug output is redacted.
#[derive(Clone)]
pub struct SecretToken(String);

impl SecretToken {
    /// 32 bytes from the operating system's RNG, base64url without padding (43 characters).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A token presented by a client; anything not shaped like ours is refused before any lookup.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = raw.len() == 43 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken([REDACTED])")
    }
}

/// Computes what is stored for a token: HMAC-SHA-256(token key, token). A leaked table holds
/// nothing usable without the key.
#[derive(Clone)]
pub struct TokenHasher(SecretString);

impl fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHasher([REDACTED])")
    }
}

impl TokenHasher {
    pub fn new(key: SecretString) -> Self {
        Self(key)
    }

    pub fn hash(&self, token: &SecretToken) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.expose_secret().as_bytes())
            .expect("HMAC takes any key length");
        mac.update(token.0.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// The token that replaces `token` when it is rotated: derived from it under the key, so
    /// presenting the same token twice yields the same successor, never a second chain.
    pub fn successor(&self, token: &SecretToken) -> SecretToken {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.expose_secret().as_bytes())
            .expect("HMAC takes any key length");
        mac.update(b"slipway refresh successor\0");
        mac.update(token.0.as_bytes());
        SecretToken(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_well_formed_and_hashed_under_the_key() {
        let (a, b) = (SecretToken::generate(), SecretToken::generate());
        assert_ne!(a.expose(), b.expose());
        assert!(SecretToken::parse(a.expose()).is_some());
        assert!(SecretToken::parse("short").is_none());
        assert!(SecretToken::parse(&format!("{}!", &a.expose()[..42])).is_none());
        let h1 = TokenHasher::new(SecretString::from("k1".to_string()));
        let h2 = TokenHasher::new(SecretString::from("k2".to_string()));
        assert_eq!(h1.hash(&a).len(), 32);
        assert_eq!(h1.hash(&a), h1.hash(&a));
        assert_ne!(h1.hash(&a), h2.hash(&a), "the key matters");
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn a_successor_is_fixed_by_its_token_and_the_key_and_looks_like_any_token() {
        let (a, b) = (SecretToken::generate(), SecretToken::generate());
        let h1 = TokenHasher::new(SecretString::from("k1".to_string()));
        let h2 = TokenHasher::new(SecretString::from("k2".to_string()));
        assert_eq!(h1.successor(&a).expose(), h1.successor(&a).expose());
        assert_ne!(h1.successor(&a).expose(), h1.successor(&b).expose());
        assert_ne!(h1.successor(&a).expose(), h2.successor(&a).expose());
        assert!(SecretToken::parse(h1.successor(&a).expose()).is_some());
        assert_ne!(h1.hash(&h1.successor(&a)), h1.hash(&a));
    }
}
