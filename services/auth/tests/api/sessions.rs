//! Refresh tokens and sessions: rotation, reuse detection and logout.

use serde_json::{Value, json};

use crate::helpers::{problem_slug, spawn_app, spawn_app_with};

async fn refresh(app: &crate::helpers::TestApp, token: &Value) -> reqwest::Response {
    app.post("/token/refresh", json!({ "refresh_token": token })).await
}

#[tokio::test]
async fn each_refresh_token_works_once_and_rotates() {
    let app = spawn_app_with(&[("SLIPWAY_AUTH_REFRESH_REUSE_GRACE", "0s")]).await;
    let user = app.active_user().await;
    let first = app.tokens(&user).await;
    let second: Value = refresh(&app, &first["refresh_token"]).await.json().await.expect("rotated");
    assert_ne!(first["refresh_token"], second["refresh_token"]);
    assert_eq!(app.get_auth("/me", second["access_token"].as_str().expect("at")).await.status(), 200);
    let third: Value = refresh(&app, &second["refresh_token"]).await.json().await.expect("rotated again");
    assert!(third["access_token"].is_string());
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_its_whole_family() {
    let app = spawn_app_with(&[("SLIPWAY_AUTH_REFRESH_REUSE_GRACE", "0s")]).await;
    let user = app.active_user().await;
    let stolen = app.tokens(&user).await;
    let legit: Value = refresh(&app, &stolen["refresh_token"]).await.json().await.expect("rotated");
    let other_session = app.tokens(&user).await;

    let replay = refresh(&app, &stolen["refresh_token"]).await;
    assert_eq!(problem_slug(replay).await, (401, "invalid-refresh-token".into()));
    let successor = refresh(&app, &legit["refresh_token"]).await;
    assert_eq!(successor.status(), 401, "the family is revoked, the thief's and the owner's tokens alike");
    let access = legit["access_token"].as_str().expect("at");
    assert_eq!(app.get_auth("/me", access).await.status(), 401, "its access tokens stop working at auth too");
    assert_eq!(refresh(&app, &other_session["refresh_token"]).await.status(), 200, "other sessions live on");
    let outcomes: Vec<String> = app.audit("refresh").await.into_iter().map(|a| a.0).collect();
    assert!(outcomes.contains(&"reuse-detected".to_string()), "{outcomes:?}");
}

#[tokio::test]
async fn a_spent_refresh_token_presented_within_the_grace_window_still_works() {
    let app = spawn_app_with(&[("SLIPWAY_AUTH_REFRESH_REUSE_GRACE", "1h")]).await;
    let user = app.active_user().await;
    let tokens = app.tokens(&user).await;
    let tab_one = refresh(&app, &tokens["refresh_token"]).await;
    let tab_two = refresh(&app, &tokens["refresh_token"]).await;
    assert_eq!(
        (tab_one.status().as_u16(), tab_two.status().as_u16()),
        (200, 200),
        "parallel tabs refreshing at once both succeed"
    );
    let two: Value = tab_two.json().await.expect("tokens");
    assert_eq!(refresh(&app, &two["refresh_token"]).await.status(), 200);
}

#[tokio::test]
async fn replays_within_the_grace_window_get_the_same_successor_so_the_session_never_forks() {
    let app = spawn_app_with(&[("SLIPWAY_AUTH_REFRESH_REUSE_GRACE", "1h")]).await;
    let user = app.active_user().await;
    let tokens = app.tokens(&user).await;
    let rt = &tokens["refresh_token"];
    let (a, b, c, d, e) = tokio::join!(
        refresh(&app, rt),
        refresh(&app, rt),
        refresh(&app, rt),
        refresh(&app, rt),
        refresh(&app, rt)
    );
    let mut successors = Vec::new();
    for res in [a, b, c, d, e] {
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("tokens");
        successors.push(body["refresh_token"].as_str().expect("rt").to_string());
    }
    successors.dedup();
    assert_eq!(successors.len(), 1, "five concurrent replays, one successor");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.refresh_tokens")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(rows, 2, "the first token and its one successor: a single chain");
}

#[tokio::test]
async fn logout_ends_one_session_and_logout_everywhere_ends_them_all() {
    let app = spawn_app().await;
    let user = app.active_user().await;
    let laptop = app.tokens(&user).await;
    let phone = app.tokens(&user).await;
    let tablet = app.tokens(&user).await;

    let res = app.post("/logout", json!({ "refresh_token": laptop["refresh_token"] })).await;
    assert_eq!(res.status(), 204);
    assert_eq!(refresh(&app, &laptop["refresh_token"]).await.status(), 401);
    assert_eq!(app.get_auth("/me", laptop["access_token"].as_str().expect("at")).await.status(), 401);
    assert_eq!(app.get_auth("/me", phone["access_token"].as_str().expect("at")).await.status(), 200);

    let everywhere =
        app.post_auth("/logout/all", phone["access_token"].as_str().expect("at"), json!({})).await;
    assert_eq!(everywhere.status(), 204);
    for device in [&phone, &tablet] {
        assert_eq!(refresh(&app, &device["refresh_token"]).await.status(), 401);
        assert_eq!(app.get_auth("/me", device["access_token"].as_str().expect("at")).await.status(), 401);
    }
    assert_eq!(app.post("/logout", json!({ "refresh_token": "unknown" })).await.status(), 204, "idempotent");
}

#[tokio::test]
async fn me_without_or_with_a_bad_token_is_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let none = app.get("/me").await;
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    assert_eq!(problem_slug(none).await, (401, "unauthorized".into()));
    assert_eq!(app.get_auth("/me", "not.a.jwt").await.status(), 401);
}
