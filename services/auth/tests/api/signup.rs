//! Signup: the account and its event in one transaction, and answers that reveal nothing.

use serde_json::json;

use crate::helpers::{problem_slug, spawn_app, status_and_body};

#[tokio::test]
async fn signup_creates_a_pending_account_and_its_activation_event_in_one_transaction() {
    let app = spawn_app().await;
    let res = app.signup("Ada@Example.com", "a long enough passphrase").await;
    assert_eq!(res.status(), 202);

    let (email, activated): (String, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT email, activated_at FROM auth.users")
            .fetch_one(&app.pool)
            .await
            .expect("user row");
    assert_eq!((email.as_str(), activated), ("ada@example.com", None));

    let events = app.events("auth.activation_requested").await;
    assert_eq!(events.len(), 1);
    let link = events[0]["activation_url"].as_str().expect("link");
    assert!(link.starts_with("http://localhost:8080/activate?token="), "built from the public URL: {link}");
    assert_eq!(events[0]["email"], "ada@example.com");

    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT hash FROM auth.one_time_tokens")
        .fetch_all(&app.pool)
        .await
        .expect("tokens");
    let token = link.split("token=").nth(1).expect("token");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].len(), 32, "an HMAC-SHA-256, not the token");
    assert!(!String::from_utf8_lossy(&stored[0]).contains(token));
}

#[tokio::test]
async fn signup_answers_identically_for_new_pending_and_active_addresses() {
    let app = spawn_app().await;
    let active = app.active_user().await;
    app.signup("pending@example.com", "a long enough passphrase").await;

    let new = status_and_body(app.signup("new@example.com", "another long passphrase").await).await;
    let pending = status_and_body(app.signup("pending@example.com", "another long passphrase").await).await;
    let taken = status_and_body(app.signup(&active.email, "another long passphrase").await).await;
    assert_eq!(new, pending);
    assert_eq!(new, taken);
    assert_eq!(new.0, 202);

    let warned = app.events("auth.signup_existing_account").await;
    assert_eq!(warned.len(), 1, "the active account's owner is told someone tried");
    assert_eq!(warned[0]["email"], active.email);
    let resent = app.events("auth.activation_requested").await;
    assert_eq!(
        resent.iter().filter(|e| e["email"] == "pending@example.com").count(),
        2,
        "a pending account gets a new link"
    );
    let users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM auth.users").fetch_one(&app.pool).await.expect("count");
    assert_eq!(users, 3);

    let login = app.login(&active.email, &active.password).await;
    assert_eq!(login.status(), 200, "the taken address kept its password");
}

#[tokio::test]
async fn a_weak_or_malformed_signup_is_a_422_that_says_what_to_fix() {
    let app = spawn_app().await;
    for (email, password, field) in [
        ("not-an-email", "a long enough passphrase", "email"),
        ("ok@example.com", "short", "password"),
        ("ok@example.com", "password123", "password"),
        ("ok@example.com", "Baseball", "password"),
    ] {
        let res = app.signup(email, password).await;
        let body: serde_json::Value = {
            assert_eq!(res.status(), 422, "{email} {password}");
            res.json().await.expect("json")
        };
        assert_eq!(body["errors"][0]["field"], field, "{body}");
        assert!(body["type"].as_str().expect("type").ends_with("/validation"));
    }
    let long = "x".repeat(300);
    assert_eq!(app.signup("ok@example.com", &long).await.status(), 422);
    let events = app.events("auth.activation_requested").await;
    assert!(events.is_empty(), "nothing was written");
}

#[tokio::test]
async fn bad_input_gets_a_4xx_problem_never_a_5xx() {
    let app = spawn_app().await;
    let url = app.url("/signup");
    let c = &app.client;
    let malformed = c
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .expect("sent");
    assert_eq!(problem_slug(malformed).await, (400, "malformed-json".into()));
    let wrong_type = c
        .post(&url)
        .json(&json!({ "email": 42, "password": "a long enough passphrase" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(problem_slug(wrong_type).await, (422, "invalid-body".into()));
    let unknown = c
        .post(&url)
        .json(&json!({ "email": "a@example.com", "password": "a long enough passphrase", "admin": true }))
        .send()
        .await
        .expect("sent");
    assert_eq!(problem_slug(unknown).await, (422, "invalid-body".into()));
    let missing = c.post(&url).json(&json!({ "email": "a@example.com" })).send().await.expect("sent");
    assert_eq!(problem_slug(missing).await, (422, "invalid-body".into()));
    let no_type = c.post(&url).body("{}").send().await.expect("sent");
    assert_eq!(problem_slug(no_type).await, (415, "unsupported-media-type".into()));
    let huge = json!({ "email": "a@example.com", "password": "x".repeat(2 * 1024 * 1024) });
    let oversized = c.post(&url).json(&huge).send().await.expect("sent");
    assert_eq!(problem_slug(oversized).await, (413, "body-too-large".into()));
    let wrong_method = c.get(&url).send().await.expect("sent");
    assert_eq!(problem_slug(wrong_method).await, (405, "method-not-allowed".into()));
}

#[tokio::test]
async fn a_second_signup_for_a_pending_address_sets_the_password_and_kills_the_first_link() {
    let app = spawn_app().await;
    let email = "victim@example.com";
    assert_eq!(app.signup(email, "the attacker's passphrase").await.status(), 202);
    let attackers_link = app.activation_token(email).await;
    assert_eq!(app.signup(email, "the owner's own passphrase").await.status(), 202);
    let owners_link = app.activation_token(email).await;
    assert_ne!(attackers_link, owners_link);

    let stale = app.post("/activation", json!({ "token": attackers_link })).await;
    assert_eq!(
        problem_slug(stale).await,
        (410, "token-used".into()),
        "an earlier signup's link no longer activates"
    );
    assert_eq!(app.post("/activation", json!({ "token": owners_link })).await.status(), 200);
    assert_eq!(
        app.login(email, "the attacker's passphrase").await.status(),
        401,
        "the first password is gone"
    );
    assert_eq!(app.login(email, "the owner's own passphrase").await.status(), 200, "the latest one counts");
}

#[tokio::test]
async fn a_pending_account_whose_links_all_expired_is_purged_and_the_address_freed() {
    let app = spawn_app().await;
    let active = app.active_user().await;
    app.signup("squatted@example.com", "a long enough passphrase").await;
    app.signup("fresh@example.com", "a long enough passphrase").await;
    let age = "UPDATE auth.users SET created_at = now() - interval '3 days'";
    sqlx::query(age).execute(&app.pool).await.expect("age accounts");
    sqlx::query(
        "UPDATE auth.one_time_tokens SET expires_at = now() - interval '1 hour' \
         WHERE user_id = (SELECT id FROM auth.users WHERE email = 'squatted@example.com')",
    )
    .execute(&app.pool)
    .await
    .expect("expire the squatter's link");

    let swept = app.sweep().await;
    assert_eq!(swept.pending_users, 1, "{swept:?}");
    let left: Vec<String> = sqlx::query_scalar("SELECT email FROM auth.users ORDER BY email")
        .fetch_all(&app.pool)
        .await
        .expect("users");
    let mut expected = vec![active.email.clone(), "fresh@example.com".to_string()];
    expected.sort();
    assert_eq!(left, expected, "an active account and one whose link still works stay");
    assert_eq!(app.signup("squatted@example.com", "the real owner's passphrase").await.status(), 202);
    let token = app.activation_token("squatted@example.com").await;
    assert_eq!(app.post("/activation", json!({ "token": token })).await.status(), 200);
}
