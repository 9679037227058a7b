//! Signing keys and the JWKS: verified by an independent library, and rotation.

use std::process::Command;

use auth::jwt;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePublicKey};
use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_on, spawn_app_with};

const VERIFY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/verify_token.py");

fn python_verify(jwks: &Value, token: &str) -> (bool, String) {
    let file = std::env::temp_dir().join(format!("jwks-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, jwks.to_string()).expect("write jwks");
    let out = Command::new("python3")
        .args([VERIFY, &file.display().to_string(), token, "http://localhost:8080", "slipway"])
        .output()
        .expect("python3 runs (install PyJWT: pip install 'pyjwt[crypto]')");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test]
async fn an_independent_jwt_library_verifies_our_tokens_from_the_jwks_alone() {
    let app = spawn_app().await;
    let user = app.active_user().await;
    let tokens = app.tokens(&user).await;
    let access = tokens["access_token"].as_str().expect("at");
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.expect("jwks");
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    assert!(jwks["keys"][0].get("d").is_none(), "no private part is published");

    let (ok, out) = python_verify(&jwks, access);
    assert!(ok, "PyJWT refused the token: {out}");
    let claims: Value = serde_json::from_str(out.trim()).expect("claims json");
    let me: Value = app.get_auth("/me", access).await.json().await.expect("me");
    assert_eq!(claims["sub"], me["id"]);

    let mut forged = access.to_string();
    forged.replace_range(forged.len() - 4.., "AAAA");
    assert!(!python_verify(&jwks, &forged).0, "a tampered token fails the independent check");
}

#[tokio::test]
async fn the_dev_signing_key_is_generated_once_and_kept_across_restarts() {
    let first = spawn_app().await;
    let jwks_before: Value = first.get("/.well-known/jwks.json").await.json().await.expect("jwks");
    let user = first.active_user().await;
    let token = first.tokens(&user).await["access_token"].as_str().expect("at").to_string();
    let second = spawn_app_on(first.db.clone(), &[]).await;
    let jwks_after: Value = second.get("/.well-known/jwks.json").await.json().await.expect("jwks");
    assert_eq!(jwks_before, jwks_after);
    assert_eq!(second.get_auth("/me", &token).await.status(), 200, "another instance verifies it");
}

#[tokio::test]
async fn after_rotation_the_old_key_still_verifies_its_tokens_and_new_ones_use_the_new_key() {
    let old_pem = jwt::generate_pem().expect("pem");
    let new_pem = jwt::generate_pem().expect("pem");
    let old_public = SigningKey::from_pkcs8_pem(&old_pem)
        .expect("key")
        .verifying_key()
        .to_public_key_pem(Default::default())
        .expect("public pem");

    let before = spawn_app_with(&[("SLIPWAY_AUTH_JWT_KEY", &old_pem)]).await;
    let user = before.active_user().await;
    let old_token = before.tokens(&user).await["access_token"].as_str().expect("at").to_string();

    let after = spawn_app_on(
        before.db.clone(),
        &[("SLIPWAY_AUTH_JWT_KEY", &new_pem), ("SLIPWAY_AUTH_JWT_PREVIOUS_KEYS", &old_public)],
    )
    .await;
    assert_eq!(after.get_auth("/me", &old_token).await.status(), 200, "the old key still verifies");
    let new_token = after.tokens(&user).await["access_token"].as_str().expect("at").to_string();
    let jwks: Value = after.get("/.well-known/jwks.json").await.json().await.expect("jwks");
    let kids: Vec<&str> =
        jwks["keys"].as_array().expect("keys").iter().map(|k| k["kid"].as_str().expect("kid")).collect();
    assert_eq!(kids.len(), 2);
    let header = new_token.split('.').next().expect("header");
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).expect("b64"),
    )
    .expect("json");
    assert_eq!(header["kid"], kids[0], "the new key signs and is listed first");
    assert!(python_verify(&jwks, &old_token).0 && python_verify(&jwks, &new_token).0);

    let retired = spawn_app_on(before.db.clone(), &[("SLIPWAY_AUTH_JWT_KEY", &new_pem)]).await;
    assert_eq!(
        retired.get_auth("/me", &old_token).await.status(),
        401,
        "once retired, the old key verifies nothing"
    );
}
