//! Login: the tokens it returns, and what wrong credentials and lockouts answer.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::helpers::{TestUser, problem_slug, spawn_app, spawn_app_on, spawn_app_with, status_and_problem};

fn jwt_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).expect("three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

#[tokio::test]
async fn login_returns_a_short_lived_eddsa_access_token_and_an_opaque_refresh_token() {
    let app = spawn_app().await;
    let user = app.active_user().await;
    let tokens = app.tokens(&user).await;
    let access = tokens["access_token"].as_str().expect("access token");
    let header = jwt_part(access, 0);
    assert_eq!(header["alg"], "EdDSA");
    assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()));
    let claims = jwt_part(access, 1);
    for claim in ["iss", "aud", "sub", "exp", "iat", "jti"] {
        assert!(!claims[claim].is_null(), "{claim} missing in {claims}");
    }
    assert_eq!(claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"), 15 * 60);
    assert_eq!(tokens["expires_in"], 900);
    assert_eq!(tokens["refresh_token"].as_str().expect("refresh").len(), 43);

    let me: Value = app.get_auth("/me", access).await.json().await.expect("me");
    assert_eq!(me["email"], user.email);
    assert_eq!(me["id"], claims["sub"]);
}

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    let user = app.active_user().await;
    let wrong = status_and_problem(app.login(&user.email, "not the password at all").await).await;
    let unknown = status_and_problem(app.login("nobody@example.com", "not the password at all").await).await;
    assert_eq!(wrong, unknown);
    assert_eq!(wrong.0, 401);
    let outcomes: Vec<String> = app.audit("login").await.into_iter().map(|a| a.0).collect();
    assert_eq!(outcomes, vec!["bad-credentials", "bad-credentials"], "both audited alike");
}

#[tokio::test]
async fn an_unactivated_account_cannot_log_in_and_is_offered_a_resend() {
    let app = spawn_app().await;
    app.signup("ada@example.com", "a long enough passphrase").await;
    let res = app.login("ada@example.com", "a long enough passphrase").await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.expect("json");
    assert!(body["type"].as_str().expect("type").ends_with("/account-not-activated"));
    assert_eq!(body["resend"], "/activation/resend");
}

#[tokio::test]
async fn a_client_that_keeps_failing_is_locked_out_even_for_the_right_password() {
    let app = spawn_app_with(&[("SLIPWAY_AUTH_LOCKOUT", "3/15m")]).await;
    let user = app.active_user().await;
    for _ in 0..3 {
        assert_eq!(app.login(&user.email, "wrong wrong wrong").await.status(), 401);
    }
    let locked = app.login(&user.email, &user.password).await;
    assert!(locked.headers().contains_key("retry-after"));
    assert_eq!(problem_slug(locked).await, (429, "account-locked".into()));
    let unknown_locked = {
        for _ in 0..3 {
            app.login("ghost@example.com", "wrong wrong wrong").await;
        }
        app.login("ghost@example.com", "wrong wrong wrong").await
    };
    assert_eq!(
        problem_slug(unknown_locked).await,
        (429, "account-locked".into()),
        "unknown addresses lock alike"
    );
}

#[tokio::test]
async fn a_successful_login_clears_earlier_failures() {
    let app = spawn_app_with(&[("SLIPWAY_AUTH_LOCKOUT", "3/15m")]).await;
    let user = app.active_user().await;
    for _ in 0..2 {
        app.login(&user.email, "wrong wrong wrong").await;
    }
    assert_eq!(app.login(&user.email, &user.password).await.status(), 200);
    for _ in 0..2 {
        app.login(&user.email, "wrong wrong wrong").await;
    }
    assert_eq!(app.login(&user.email, &user.password).await.status(), 200);
}

#[tokio::test]
async fn the_per_ip_limit_ignores_x_forwarded_for_from_an_untrusted_peer() {
    let app = spawn_app_with(&[("SLIPWAY_AUTH_LIMIT_LOGIN_IP", "3/1m")]).await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let res = app
            .client
            .post(app.url("/login"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .json(&json!({ "email": format!("u{i}@example.com"), "password": "whatever whatever" }))
            .send()
            .await
            .expect("answer");
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, vec![401, 401, 401, 429], "all four came from 127.0.0.1");
    let ips: Vec<Option<String>> = app.audit("login").await.into_iter().map(|a| a.1).collect();
    assert_eq!(ips.len(), 3, "the limited attempt never reached the password check");
    assert!(ips.iter().all(|ip| ip.as_deref() == Some("127.0.0.1")), "{ips:?}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_limited_and_audited() {
    let app =
        spawn_app_with(&[("SLIPWAY_AUTH_LIMIT_LOGIN_IP", "3/1m"), ("SLIPWAY_TRUSTED_PROXIES", "127.0.0.1")])
            .await;
    let attempt = async |client_ip: &str, n: usize| {
        let res = app
            .client
            .post(app.url("/login"))
            .header("x-forwarded-for", format!("6.6.6.6, {client_ip}"))
            .header("user-agent", "test-agent/1.0")
            .json(&json!({ "email": format!("someone{n}@example.com"), "password": "whatever whatever" }))
            .send()
            .await
            .expect("answer");
        res.status().as_u16()
    };
    let mut statuses = Vec::new();
    let ips = [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.4",
        "198.51.100.1",
        "198.51.100.1",
        "198.51.100.1",
    ];
    for (n, ip) in ips.into_iter().enumerate() {
        statuses.push(attempt(ip, n).await);
    }
    assert_eq!(statuses, vec![401, 401, 401, 401, 401, 401, 429], "counted per forwarded client");
    let audit = app.audit("login").await;
    assert_eq!(
        audit[0].1.as_deref(),
        Some("198.51.100.1"),
        "the right-most untrusted hop, not the forged one"
    );
    assert_eq!(audit[0].2.as_deref(), Some("test-agent/1.0"));
}

#[tokio::test]
async fn a_hash_made_with_weaker_parameters_is_upgraded_at_login() {
    let weak = [("SLIPWAY_AUTH_ARGON2_MEMORY_KIB", "8192"), ("SLIPWAY_AUTH_ARGON2_ITERATIONS", "1")];
    let old = spawn_app_with(&weak).await;
    let user = old.active_user().await;
    let before: String =
        sqlx::query_scalar("SELECT password_hash FROM auth.users").fetch_one(&old.pool).await.expect("hash");
    assert!(before.contains("m=8192,t=1"), "{before}");

    let current = spawn_app_on(old.db.clone(), &[]).await;
    let TestUser { email, password } = user;
    assert_eq!(current.login(&email, &password).await.status(), 200);
    let after: String = sqlx::query_scalar("SELECT password_hash FROM auth.users")
        .fetch_one(&current.pool)
        .await
        .expect("hash");
    assert!(after.starts_with("$argon2id$") && after.contains("m=19456,t=2"), "{after}");
    assert_eq!(current.login(&email, &password).await.status(), 200, "the upgraded hash verifies");
}

#[tokio::test]
async fn a_login_flood_queues_for_the_hasher_while_other_endpoints_answer() {
    let limits_off = [
        ("SLIPWAY_AUTH_HASH_CONCURRENCY", "1"),
        ("SLIPWAY_AUTH_HASH_QUEUE", "64"),
        ("SLIPWAY_AUTH_LIMIT_LOGIN_IP", "off"),
        ("SLIPWAY_AUTH_LIMIT_LOGIN_EMAIL", "off"),
        ("SLIPWAY_AUTH_LOCKOUT", "off"),
    ];
    let app = spawn_app_with(&limits_off).await;
    let user = app.active_user().await;
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let request = app
            .client
            .post(app.url("/login"))
            .json(&json!({ "email": user.email, "password": "wrong wrong wrong" }));
        let answered = answered.clone();
        flood.spawn(async move {
            let status = request.send().await.map(|r| r.status().as_u16());
            answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            status
        });
    }
    let ready = app.get("/readyz").await;
    let done_when_ready = answered.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(ready.status(), 200);
    assert!(
        done_when_ready < 40,
        "health answered while {} logins still waited for the hasher",
        40 - done_when_ready
    );
    let results = flood.join_all().await;
    assert!(results.iter().all(|r| matches!(r, Ok(401))), "every login was answered: {results:?}");
}

const BEHIND_PROXY: (&str, &str) = ("SLIPWAY_TRUSTED_PROXIES", "127.0.0.1");

#[tokio::test]
async fn an_attacker_failing_on_an_account_never_locks_its_owner_out() {
    let app = spawn_app_with(&[("SLIPWAY_AUTH_LOCKOUT", "3/15m"), BEHIND_PROXY]).await;
    let user = app.active_user().await;
    let attempt = async |client: &str, password: &str| {
        let body = json!({ "email": user.email, "password": password });
        app.post_from(client, "/login", body).await
    };
    for _ in 0..6 {
        attempt("203.0.113.66", "wrong wrong wrong").await;
    }
    let attacker = attempt("203.0.113.66", &user.password).await;
    assert_eq!(problem_slug(attacker).await, (429, "account-locked".into()), "the failing client is locked");
    assert_eq!(attempt("198.51.100.7", &user.password).await.status(), 200, "the owner signs in");
}

#[tokio::test]
async fn concurrent_guesses_from_one_client_cannot_all_pass_the_lockout() {
    let app = spawn_app_with(&[("SLIPWAY_AUTH_LOCKOUT", "3/15m"), ("SLIPWAY_AUTH_HASH_QUEUE", "64")]).await;
    let user = app.active_user().await;
    let mut guesses = tokio::task::JoinSet::new();
    for n in 0..12 {
        let req = app
            .client
            .post(app.url("/login"))
            .json(&json!({ "email": user.email, "password": format!("guess number {n}") }));
        guesses.spawn(async move { req.send().await.expect("answer").status().as_u16() });
    }
    let statuses = guesses.join_all().await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(checked, 3, "counted before checking: only three guesses were checked, {statuses:?}");
}

#[tokio::test]
async fn a_password_reset_lifts_a_lockout() {
    let app = spawn_app_with(&[("SLIPWAY_AUTH_LOCKOUT", "3/15m")]).await;
    let user = app.active_user().await;
    for _ in 0..4 {
        app.login(&user.email, "wrong wrong wrong").await;
    }
    assert_eq!(app.login(&user.email, &user.password).await.status(), 429);
    app.post("/password/reset", json!({ "email": user.email })).await;
    let token = app.emailed_token("auth.password_reset_requested", "reset_url", &user.email).await;
    let body = json!({ "token": token, "new_password": "a brand new passphrase" });
    assert_eq!(app.post("/password/reset/confirm", body).await.status(), 200);
    assert_eq!(app.login(&user.email, "a brand new passphrase").await.status(), 200);
}

#[tokio::test]
async fn a_flood_beyond_the_hashers_queue_is_refused_with_503_and_retry_after() {
    let narrow = [
        ("SLIPWAY_AUTH_ARGON2_ITERATIONS", "12"),
        ("SLIPWAY_AUTH_HASH_CONCURRENCY", "1"),
        ("SLIPWAY_AUTH_HASH_QUEUE", "2"),
        ("SLIPWAY_AUTH_LIMIT_LOGIN_IP", "off"),
        ("SLIPWAY_AUTH_LOCKOUT", "off"),
    ];
    let app = spawn_app_with(&narrow).await;
    let mut flood = tokio::task::JoinSet::new();
    for n in 0..12 {
        let req = app
            .client
            .post(app.url("/login"))
            .json(&json!({ "email": format!("u{n}@example.com"), "password": "wrong wrong wrong" }));
        flood.spawn(async move {
            let res = req.send().await.expect("answer");
            (res.status().as_u16(), res.headers().get("retry-after").cloned())
        });
    }
    let answers = flood.join_all().await;
    let busy: Vec<_> = answers.iter().filter(|(s, _)| *s == 503).collect();
    assert!(!busy.is_empty(), "more than three at once: some are refused, {answers:?}");
    assert!(busy.iter().all(|(_, retry)| retry.is_some()), "each with Retry-After");
    assert!(answers.iter().all(|(s, _)| matches!(s, 401 | 503)), "{answers:?}");
}
