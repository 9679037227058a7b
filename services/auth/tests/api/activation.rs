//! Activation links: one use, and one activation under concurrent uses.

use serde_json::json;

use crate::helpers::{problem_slug, spawn_app, spawn_app_with};

#[tokio::test]
async fn an_activation_token_works_once_and_then_says_it_was_used() {
    let app = spawn_app().await;
    app.signup("ada@example.com", "a long enough passphrase").await;
    let token = app.activation_token("ada@example.com").await;
    assert_eq!(
        app.login("ada@example.com", "a long enough passphrase").await.status(),
        403,
        "not yet active"
    );

    let first = app.post("/activation", json!({ "token": token })).await;
    assert_eq!(first.status(), 200);
    let again = app.post("/activation", json!({ "token": token })).await;
    assert_eq!(problem_slug(again).await, (410, "token-used".into()));
    assert_eq!(app.login("ada@example.com", "a long enough passphrase").await.status(), 200);
}

#[tokio::test]
async fn concurrent_uses_of_one_token_activate_once() {
    let app = spawn_app().await;
    app.signup("ada@example.com", "a long enough passphrase").await;
    let token = app.activation_token("ada@example.com").await;
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let request = app.client.post(app.url("/activation")).json(&json!({ "token": token }));
        attempts.spawn(async move { request.send().await.expect("answer").status().as_u16() });
    }
    let statuses = attempts.join_all().await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 410).count(), 4, "{statuses:?}");
}

#[tokio::test]
async fn expired_foreign_and_garbage_tokens_are_refused() {
    let app = spawn_app().await;
    let user = app.active_user().await;

    app.signup("late@example.com", "a long enough passphrase").await;
    let late = app.activation_token("late@example.com").await;
    sqlx::query("UPDATE auth.one_time_tokens SET expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .expect("age tokens");
    assert_eq!(
        problem_slug(app.post("/activation", json!({ "token": late })).await).await,
        (410, "token-expired".into())
    );

    app.post("/password/reset", json!({ "email": user.email })).await;
    let reset = app.emailed_token("auth.password_reset_requested", "reset_url", &user.email).await;
    let as_activation = app.post("/activation", json!({ "token": reset })).await;
    assert_eq!(
        problem_slug(as_activation).await,
        (404, "token-invalid".into()),
        "a reset token is not an activation token"
    );

    for garbage in ["", "nope", &"A".repeat(43)] {
        let res = app.post("/activation", json!({ "token": garbage })).await;
        assert_eq!(problem_slug(res).await, (404, "token-invalid".into()));
    }
    let outcomes: Vec<String> = app.audit("activation").await.into_iter().map(|a| a.0).collect();
    assert!(
        outcomes.contains(&"token-expired".to_string()) && outcomes.contains(&"token-invalid".to_string()),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn resending_activation_is_rate_limited_with_retry_after() {
    let app = spawn_app_with(&[("SLIPWAY_AUTH_LIMIT_RESEND_EMAIL", "2/1h")]).await;
    app.signup("ada@example.com", "a long enough passphrase").await;
    for _ in 0..2 {
        assert_eq!(app.post("/activation/resend", json!({ "email": "ada@example.com" })).await.status(), 202);
    }
    let limited = app.post("/activation/resend", json!({ "email": "ada@example.com" })).await;
    let retry_after: u64 =
        limited.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!(retry_after > 3500 && retry_after <= 3600, "{retry_after}");
    assert_eq!(problem_slug(limited).await, (429, "rate-limited".into()));
    app.settled().await;
    assert_eq!(app.events("auth.activation_requested").await.len(), 3, "signup plus two resends");
}
