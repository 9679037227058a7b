//! Password reset: requests that reveal nothing, and one-time resets that end sessions.

use serde_json::{Value, json};

use crate::helpers::{problem_slug, spawn_app, spawn_app_with, status_and_body};

#[tokio::test]
async fn a_reset_request_answers_the_same_for_known_and_unknown_addresses() {
    let app = spawn_app().await;
    let user = app.active_user().await;
    let known = status_and_body(app.post("/password/reset", json!({ "email": user.email })).await).await;
    let unknown =
        status_and_body(app.post("/password/reset", json!({ "email": "nobody@example.com" })).await).await;
    assert_eq!(known, unknown);
    assert_eq!(known.0, 202);
    app.settled().await;
    assert_eq!(app.events("auth.password_reset_requested").await.len(), 1, "only the real account gets mail");
    let outcomes: Vec<String> = app.audit("reset-request").await.into_iter().map(|a| a.0).collect();
    assert_eq!(outcomes.len(), 2, "both requests were worked on: {outcomes:?}");
}

#[tokio::test]
async fn a_reset_sets_the_new_password_once_and_ends_every_session() {
    let app = spawn_app().await;
    let user = app.active_user().await;
    let session = app.tokens(&user).await;
    app.post("/password/reset", json!({ "email": user.email })).await;
    app.settled().await;
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
    assert_eq!(problem_slug(again).await, (410, "token-used".into()));

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
    assert_eq!(problem_slug(res).await, (410, "token-expired".into()));
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

/// Argon2 made slow on purpose, one hash at a time and one more waiting: a hash costs
/// real time, and a third request that needs one is refused with 503.
const SLOW_NARROW_HASHER: [(&str, &str); 5] = [
    ("SLIPWAY_AUTH_ARGON2_ITERATIONS", "12"),
    ("SLIPWAY_AUTH_HASH_CONCURRENCY", "1"),
    ("SLIPWAY_AUTH_HASH_QUEUE", "1"),
    ("SLIPWAY_AUTH_HASH_QUEUE_WAIT", "30s"),
    ("SLIPWAY_AUTH_LIMIT_CONFIRM_IP", "off"),
];

#[tokio::test]
async fn random_reset_confirmations_are_refused_before_hashing_so_logins_are_still_served() {
    let app = spawn_app_with(&SLOW_NARROW_HASHER).await;
    let user = app.active_user().await;
    let confirm = |n: usize| {
        let token = format!("{:0>43}", format!("made-up-token-{n}"));
        app.post(
            "/password/reset/confirm",
            json!({ "token": token, "new_password": "a brand new passphrase" }),
        )
    };
    // Three clients, each sending ten made-up confirmations one after another.
    let stream = async |from: usize| {
        let mut statuses = Vec::new();
        for n in from..from + 10 {
            statuses.push(confirm(n).await.status().as_u16());
        }
        statuses
    };
    let flood = async {
        let (a, b, c) = tokio::join!(stream(0), stream(10), stream(20));
        [a, b, c].concat()
    };
    let (statuses, login, second_login) =
        tokio::join!(flood, app.login(&user.email, &user.password), app.login(&user.email, &user.password));
    assert!(statuses.iter().all(|s| *s == 404), "made-up tokens: 404 token-invalid, {statuses:?}");
    assert_eq!(
        (login.status().as_u16(), second_login.status().as_u16()),
        (200, 200),
        "the hasher was free for the logins"
    );
}

#[tokio::test]
async fn one_reset_token_is_tried_at_most_five_times_an_hour() {
    let app = spawn_app().await;
    let token = "a".repeat(43);
    let body = json!({ "token": token, "new_password": "a brand new passphrase" });
    for _ in 0..5 {
        let res = app.post("/password/reset/confirm", body.clone()).await;
        assert_eq!(problem_slug(res).await, (404, "token-invalid".into()));
    }
    let sixth = app.post("/password/reset/confirm", body).await;
    assert!(sixth.headers().contains_key("retry-after"));
    assert_eq!(problem_slug(sixth).await, (429, "rate-limited".into()));
}

#[tokio::test]
async fn changing_the_password_kills_reset_links_sent_before() {
    let app = spawn_app().await;
    let user = app.active_user().await;
    app.post("/password/reset", json!({ "email": user.email })).await;
    let token = app.emailed_token("auth.password_reset_requested", "reset_url", &user.email).await;
    let tokens = app.tokens(&user).await;
    let change = json!({ "current_password": user.password, "new_password": "a freshly changed passphrase" });
    let res = app.post_auth("/password/change", tokens["access_token"].as_str().expect("at"), change).await;
    assert_eq!(res.status(), 200);
    let late = app
        .post(
            "/password/reset/confirm",
            json!({ "token": token, "new_password": "the old link's passphrase" }),
        )
        .await;
    assert_eq!(problem_slug(late).await, (410, "token-used".into()));
    assert_eq!(app.login(&user.email, "a freshly changed passphrase").await.status(), 200);
}

#[tokio::test]
async fn password_changes_are_throttled_per_user() {
    let app = spawn_app_with(&[("SLIPWAY_AUTH_LIMIT_CHANGE_USER", "2/1h")]).await;
    let user = app.active_user().await;
    let tokens = app.tokens(&user).await;
    let access = tokens["access_token"].as_str().expect("at");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let body = json!({ "current_password": "not it at all", "new_password": "whatever passphrase" });
        statuses.push(app.post_auth("/password/change", access, body).await.status().as_u16());
    }
    assert_eq!(statuses, vec![422, 422, 429], "guessing the current password is throttled");
}

#[tokio::test]
async fn a_reset_request_is_queued_and_answered_the_same_way_for_any_address_and_never_lost() {
    let app = spawn_app().await;
    let user = app.active_user().await;
    for email in [user.email.as_str(), "nobody@example.com"] {
        assert_eq!(app.post("/password/reset", json!({ "email": email })).await.status(), 202);
    }
    // Before any lookup is done, each request is one queued message, alike for both.
    let queued: Vec<String> = sqlx::query_scalar(
        "SELECT payload->>'email' FROM bus.events WHERE topic = 'auth.reset_wanted' ORDER BY published_at",
    )
    .fetch_all(&app.pool)
    .await
    .expect("queued");
    let handled: i64 =
        sqlx::query_scalar("SELECT count(*) FROM auth.audit_events WHERE event = 'reset-request'")
            .fetch_one(&app.pool)
            .await
            .expect("audit");
    assert!(queued.len() + usize::try_from(handled).expect("count") >= 2, "each request was taken");
    app.settled().await;
    let tokens = app.events("auth.password_reset_requested").await;
    assert_eq!(tokens.len(), 1, "the worker sent the one link due");
    assert_eq!(tokens[0]["email"], user.email);
}
