//! CSRF protection for every form: a signed double-submit token. Each browser gets a random
//! cookie; forms carry HMAC(key, cookie); a POST passes only if the two agree.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

#[derive(Debug, Clone)]
pub struct Csrf {
    key: SecretString,
}

impl Csrf {
    pub fn new(key: SecretString) -> Self {
        Self { key }
    }

    /// A fresh value for the browser's CSRF cookie.
    pub fn new_cookie() -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The token forms carry for a cookie value.
    pub fn token(&self, cookie: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.expose_secret().as_bytes())
            .expect("any key length");
        mac.update(cookie.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Whether a submitted token matches the cookie (in constant time).
    pub fn verify(&self, cookie: Option<&str>, submitted: &str) -> bool {
        let Some(cookie) = cookie.filter(|c| !c.is_empty()) else { return false };
        let Ok(submitted) = URL_SAFE_NO_PAD.decode(submitted) else { return false };
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.expose_secret().as_bytes())
            .expect("any key length");
        mac.update(cookie.as_bytes());
        mac.verify_slice(&submitted).is_ok()
    }
}
