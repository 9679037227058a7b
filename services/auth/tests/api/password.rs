use serde_json::{Value, json};

use crate::helpers::{problem_slug, spawn_app, status_and_body};

#[tokio::test]
async fn a_reset_request_answers_the_same_for_known_and_unknown_addresses() {
    let app = spawn_app().await;
    let user = app.active_user().await;
    let known = status_and_body(app.post("/password/reset", json!({ "email": user.email })).await).await;
    let unknown =
        status_and_body(app.post("/password/reset", json!({ "email": "nobody@example.com" })).await).await;
    assert_eq!(known, unknown);
    assert_eq!(known.0, 202);
    assert_eq!(app.events("auth.password_reset_requested").await.len(), 1, "only the real account gets mail");
}

#[tokio::test]
async fn a_reset_sets_the_new_password_once_and_ends_every_session() {
    let app = spawn_app().await;
    let user = app.active_user().await;
    let session = app.tokens(&user).await;
    app.post("/password/reset", json!({ "email": user.email })).await;
    let link =
        app.events("auth.password_reset_requested").await[0]["reset_url"].as_str().expect("url").to_string();
    assert!(link.starts_with("http://localhost:8080/reset-password?token="), "{link}");
    let token = link.split("token=").nth(1).expect("token");

    let weak =
        app.post("/password/reset/confirm", json!({ "token": token, "new_password": "password" })).await;
    assert_eq!(weak.status(), 422, "a rule-breaking password does not spend the token");
    let done = app
        .post("/password/reset/confirm", json!({ "token": token, "new_password": "a brand new passphrase" }))
        .await;
    assert_eq!(done.status(), 200);
    let again = app
        .post("/password/reset/confirm", json!({ "token": token, "new_password": "yet another passphrase" }))
        .await;
    assert_eq!(problem_slug(again).await, (400, "token-used".into()));

    assert_eq!(app.login(&user.email, &user.password).await.status(), 401);
    assert_eq!(app.login(&user.email, "a brand new passphrase").await.status(), 200);
    let old = app.post("/token/refresh", json!({ "refresh_token": session["refresh_token"] })).await;
    assert_eq!(old.status(), 401, "sessions from before the reset are over");
    assert_eq!(app.events("auth.password_changed").await.len(), 1);
}

#[tokio::test]
async fn an_expired_reset_link_is_refused() {
    let app = spawn_app().await;
    let user = app.active_user().await;
    app.post("/password/reset", json!({ "email": user.email })).await;
    let token = app.emailed_token("auth.password_reset_requested", "reset_url", &user.email).await;
    sqlx::query("UPDATE auth.one_time_tokens SET expires_at = now() - interval '1 second' WHERE purpose = 'password_reset'")
        .execute(&app.pool)
        .await
        .expect("expire");
    let res = app
        .post("/password/reset/confirm", json!({ "token": token, "new_password": "a brand new passphrase" }))
        .await;
    assert_eq!(problem_slug(res).await, (400, "token-expired".into()));
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_the_other_sessions() {
    let app = spawn_app().await;
    let user = app.active_user().await;
    let here = app.tokens(&user).await;
    let elsewhere = app.tokens(&user).await;
    let access = here["access_token"].as_str().expect("at");

    let wrong = app
        .post_auth(
            "/password/change",
            access,
            json!({ "current_password": "guess guess", "new_password": "a brand new passphrase" }),
        )
        .await;
    let body: Value = wrong.json().await.expect("json");
    assert_eq!(body["errors"][0]["field"], "current_password", "{body}");

    let ok = app
        .post_auth(
            "/password/change",
            access,
            json!({ "current_password": user.password, "new_password": "a brand new passphrase" }),
        )
        .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(app.get_auth("/me", access).await.status(), 200, "this session continues");
    let other = app.post("/token/refresh", json!({ "refresh_token": elsewhere["refresh_token"] })).await;
    assert_eq!(other.status(), 401, "the other session is over");
    assert_eq!(app.login(&user.email, "a brand new passphrase").await.status(), 200);
}
