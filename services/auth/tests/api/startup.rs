//! Startup: health, migrations in auth's own schema, configuration errors, and database outages.

use crate::helpers::{spawn_app, spawn_app_on, test_config};

#[tokio::test]
async fn health_endpoints_answer_when_the_database_is_reachable() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn startup_applies_auth_migrations_into_the_auth_schema() {
    let app = spawn_app().await;
    let pool = app.db.pool().await;
    let users: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('auth.users')::text").fetch_one(&pool).await.expect("query");
    assert_eq!(users.as_deref(), Some("auth.users"));
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM auth.schema_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .expect("bookkeeping");
    let embedded: Vec<i64> = auth::migrations()
        .status(&app.db.db_config())
        .await
        .expect("status")
        .iter()
        .map(|s| s.version)
        .collect();
    assert_eq!(versions, embedded, "every embedded migration is applied");
}

#[tokio::test]
async fn instances_starting_together_share_one_migration_run() {
    let db = testkit::TestDb::create().await;
    let starts = (0..4).map(|_| tokio::spawn(spawn_app_on(db.clone(), &[])));
    let mut apps = Vec::new();
    for start in starts {
        apps.push(start.await.expect("every instance starts"));
    }
    for app in &apps {
        assert_eq!(app.get("/readyz").await.status(), 200);
    }
    let pool = db.pool().await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.schema_migrations")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(
        rows as usize,
        auth::migrations().status(&test_config(&db, &[]).db).await.expect("status").len()
    );
}

#[tokio::test]
async fn an_unknown_path_is_a_problem_json_404_with_a_request_id() {
    let app = spawn_app().await;
    let res = app.get("/no-such-page").await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert!(res.headers().contains_key("x-request-id"));
}

#[test]
fn a_malformed_signing_key_is_a_configuration_error_that_says_what_to_generate() {
    let vars = [
        ("SLIPWAY_ENV", "prod"),
        ("SLIPWAY_DATABASE_URL", "postgres://auth:pw@db/slipway"),
        ("SLIPWAY_AUTH_TOKEN_KEY", "a-real-token-key"),
        ("SLIPWAY_AUTH_JWT_KEY", "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----"),
        ("SLIPWAY_AUTH_JWT_PREVIOUS_KEYS", "junk"),
    ];
    let err = auth::Config::load(&kit::config::Sources::from_vars(vars)).expect_err("bad key");
    let text = err.to_string();
    assert!(text.contains("SLIPWAY_AUTH_JWT_KEY: expected an Ed25519 private key"), "{text}");
    assert!(text.contains("openssl genpkey -algorithm ed25519"), "{text}");
    assert!(text.contains("SLIPWAY_AUTH_JWT_PREVIOUS_KEYS: expected Ed25519 public keys"), "{text}");
    assert!(!text.contains("not a key"), "the secret is not echoed: {text}");
}

#[test]
fn prod_requires_a_signing_key() {
    let vars = [
        ("SLIPWAY_ENV", "prod"),
        ("SLIPWAY_DATABASE_URL", "postgres://auth:pw@db/slipway"),
        ("SLIPWAY_AUTH_TOKEN_KEY", "a-real-token-key"),
    ];
    let err = auth::Config::load(&kit::config::Sources::from_vars(vars)).expect_err("no key");
    assert!(err.to_string().contains("SLIPWAY_AUTH_JWT_KEY: required in prod"), "{err}");
}

#[tokio::test]
async fn a_database_outage_is_answered_503_with_retry_after_and_recovers_by_itself() {
    let db = testkit::TestDb::create().await;
    let proxy = testkit::TcpProxy::start(db.addr()).await;
    let via = db.url_via(proxy.port());
    let quick = [
        ("SLIPWAY_DATABASE_URL", via.as_str()),
        ("SLIPWAY_DATABASE_ACQUIRE_TIMEOUT", "1s"),
        ("SLIPWAY_DATABASE_CONNECT_TIMEOUT", "1s"),
    ];
    let app = spawn_app_on(db, &quick).await;
    let user = app.active_user().await;
    let tokens = app.tokens(&user).await;
    let access = tokens["access_token"].as_str().expect("at");

    proxy.cut();
    let res = app.get_auth("/me", access).await;
    assert!(res.headers().contains_key("retry-after"), "{:?}", res.headers());
    assert_eq!(crate::helpers::problem_slug(res).await, (503, "unavailable".into()), "not a 500");

    proxy.restore();
    testkit::eventually(std::time::Duration::from_secs(15), "/me answers again", async || {
        app.get_auth("/me", access).await.status() == 200
    })
    .await;
}
