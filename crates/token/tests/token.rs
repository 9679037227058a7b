//! Tokens signed, published and verified through this crate alone: the round trip a service in
//! any language makes (sign → JWKS → parse → verify), and each reason a token is refused.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use token::{Claims, Signer, TokenError, Verifier, jwks, key_id, kid, parse_jwks};
use uuid::Uuid;

const ISSUER: &str = "https://example.com";

fn signer() -> SigningKey {
    SigningKey::from_pkcs8_pem(&token::generate_pem().expect("pem")).expect("key")
}

fn sign(claims: &Claims, key: &SigningKey) -> Result<String, String> {
    Signer::new(key)?.sign(claims)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

fn claims(exp_in: i64) -> Claims {
    Claims {
        iss: ISSUER.into(),
        aud: token::DEFAULT_AUDIENCE.into(),
        sub: Uuid::new_v4(),
        exp: now() + exp_in,
        iat: now(),
        jti: Uuid::now_v7(),
        sid: Uuid::new_v4(),
    }
}

#[test]
fn a_token_round_trips_through_the_jwks_render_parse_and_verify() {
    let (current, previous) = (signer(), signer());
    let doc = jwks([&current.verifying_key(), &previous.verifying_key()]);
    let published = parse_jwks(&serde_json::from_str(&doc.to_string()).expect("json"));
    assert_eq!(published.len(), 2);
    assert_eq!(published[0].0, kid(&current.verifying_key()), "the signer first, under its thumbprint");

    let issued = claims(900);
    let token = sign(&issued, &current).expect("signed");
    let named = key_id(&token).expect("a key id");
    let key = published.iter().find(|(k, _)| *k == named).map(|(_, key)| key).expect("published");
    let verified = Verifier::new(ISSUER, token::DEFAULT_AUDIENCE).verify(&token, key).expect("valid");
    assert_eq!(verified, issued);
}

#[test]
fn a_changed_claim_or_another_key_breaks_the_signature() {
    let key = signer();
    let token = sign(&claims(900), &key).expect("signed");
    let verifier = Verifier::new(ISSUER, token::DEFAULT_AUDIENCE);
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    let mut forged: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).expect("b64")).expect("json");
    forged["sub"] = Uuid::new_v4().to_string().into();
    parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
    assert_eq!(verifier.verify(&parts.join("."), &key.verifying_key()), Err(TokenError::BadSignature));
    assert_eq!(verifier.verify(&token, &signer().verifying_key()), Err(TokenError::BadSignature));
}

#[test]
fn an_expired_token_is_refused_from_its_exp_second_on() {
    let key = signer();
    let verifier = Verifier::new(ISSUER, token::DEFAULT_AUDIENCE);
    for exp_in in [0, -1, -3600] {
        let token = sign(&claims(exp_in), &key).expect("signed");
        assert_eq!(
            verifier.verify(&token, &key.verifying_key()),
            Err(TokenError::Expired),
            "exp in {exp_in}s"
        );
    }
}

#[test]
fn a_token_for_another_audience_or_issuer_is_refused() {
    let key = signer();
    let token = sign(&claims(900), &key).expect("signed");
    for verifier in [Verifier::new(ISSUER, "another-app"), Verifier::new("https://other.example", "slipway")]
    {
        assert_eq!(verifier.verify(&token, &key.verifying_key()), Err(TokenError::WrongAudience));
    }
}

#[test]
fn garbage_and_other_algorithms_are_refused_before_any_key_is_looked_up() {
    assert_eq!(key_id("a.b"), Err(TokenError::Malformed));
    assert_eq!(key_id("not a token at all"), Err(TokenError::Malformed));
    let hs256 = format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"k"}"#),
        URL_SAFE_NO_PAD.encode("{}")
    );
    assert_eq!(key_id(&hs256), Err(TokenError::UnknownKey));
    let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode("{}"));
    assert!(key_id(&none).is_err(), "alg none is never accepted");
}

#[test]
fn the_default_issuer_is_the_public_url_without_a_trailing_slash() {
    assert_eq!(token::default_issuer("https://example.com/"), "https://example.com");
    assert_eq!(token::default_issuer("https://example.com"), "https://example.com");
}
