//! Auth's tokens as web stores them: sealed (ChaCha20-Poly1305) under a key derived from the
//! session's cookie, which only the browser holds — the table keeps a hash of the cookie and
//! the sealed tokens, so a copy of the database opens no session and calls auth as nobody.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const PREFIX: &str = "v1.";

fn cipher(cookie: &str) -> ChaCha20Poly1305 {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(cookie.as_bytes()).expect("HMAC takes any key length");
    mac.update(b"slipway web session tokens");
    ChaCha20Poly1305::new(&mac.finalize().into_bytes())
}

/// Seals `token` for the session of `cookie`: `v1.` + base64url(nonce ‖ ciphertext).
pub fn seal(cookie: &str, token: &str) -> anyhow::Result<String> {
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = cipher(cookie)
        .encrypt(&nonce.into(), token.as_bytes())
        .map_err(|_| anyhow::anyhow!("sealing a session token failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
}

/// Opens what [`seal`] made for the same cookie; `None` for another cookie, a changed value,
/// or a row stored before tokens were sealed.
pub fn open(cookie: &str, stored: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(stored.strip_prefix(PREFIX)?).ok()?;
    if bytes.len() < 12 {
        return None;
    }
    let (nonce, sealed) = bytes.split_at(12);
    let nonce: [u8; 12] = nonce.try_into().ok()?;
    let plain = cipher(cookie).decrypt(&nonce.into(), sealed).ok()?;
    String::from_utf8(plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_cookie_opens_a_sealed_token_and_tampering_is_caught() {
        let sealed_by = |c: &str, t: &str| seal(c, t).expect("sealed");
        let sealed = sealed_by("cookie-a", "eyJ.access.token");
        assert!(!sealed.contains("access"), "{sealed}");
        assert_eq!(open("cookie-a", &sealed).as_deref(), Some("eyJ.access.token"));
        assert_eq!(open("cookie-b", &sealed), None, "another session's cookie");
        assert_ne!(sealed_by("cookie-a", "same"), sealed_by("cookie-a", "same"), "a fresh nonce each time");
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(open("cookie-a", &tampered), None);
        assert_eq!(open("cookie-a", "plain-old-token"), None, "rows from before sealing do not open");
    }
}
