use std::time::Duration;

use auth::jwt;
use axum::Json;
use axum::routing::get;
use serde_json::Value;
use testkit::eventually;

use crate::helpers::{Backend, route, spawn_gateway};

const SOON: Duration = Duration::from_secs(10);

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after_per_client() {
    let app = Backend::start("app").await;
    let gw = spawn_gateway(&route("app", "rate_limit = \"3/1m\"", &[app.addr]), &[]).await;
    eventually(SOON, "in rotation", async || gw.healthy(app.addr).await).await;
    let statuses: Vec<u16> = {
        let mut s = Vec::new();
        for _ in 0..4 {
            s.push(gw.get("x", "/").await.status().as_u16());
        }
        s
    };
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    let limited = gw.get("x", "/").await;
    assert!(limited.headers()["retry-after"].to_str().expect("ascii").parse::<u64>().expect("seconds") >= 1);
    assert_eq!(limited.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn forwarded_headers_are_set_hop_by_hop_ones_removed_and_the_request_id_kept() {
    let app = Backend::start("app").await;
    let gw = spawn_gateway(&route("app", "", &[app.addr]), &[]).await;
    eventually(SOON, "in rotation", async || gw.healthy(app.addr).await).await;
    let res = gw
        .client
        .get(format!("{}/x", gw.base))
        .header("host", "shop.example.com")
        .header("x-request-id", "edge-42")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-user-id", "forged-admin")
        .header("connection", "keep-alive, x-secret-hop")
        .header("x-secret-hop", "do not forward")
        .send()
        .await
        .expect("answer");
    assert_eq!(res.headers()["x-request-id"], "edge-42");
    let seen: Value = res.json().await.expect("json");
    let h = &seen["headers"];
    assert_eq!(h["x-request-id"], "edge-42");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1", "a client's own X-Forwarded-For is not trusted");
    assert_eq!(h["x-forwarded-host"], "shop.example.com");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert!(h.get("x-secret-hop").is_none(), "headers named by Connection are hop-by-hop");
    assert!(h.get("x-user-id").is_none(), "a client cannot claim an identity");
}

#[tokio::test]
async fn a_protected_route_rejects_bad_tokens_and_forwards_the_user_id_of_a_good_one() {
    let config =
        auth::Config::load(&kit::config::Sources::from_vars([("SLIPWAY_ENV", "test")])).expect("auth config");
    let keys = jwt::Keys::new(&config.jwt, &jwt::generate_pem().expect("pem")).expect("keys");
    let other = jwt::Keys::new(&config.jwt, &jwt::generate_pem().expect("pem")).expect("keys");
    let jwks = keys.jwks();
    let jwks_app =
        axum::Router::new().route("/.well-known/jwks.json", get(move || async move { Json(jwks) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let jwks_url = format!("http://{}/.well-known/jwks.json", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, jwks_app).await });

    let app = Backend::start("api").await;
    let gw = spawn_gateway(
        &route("api", "protected = true", &[app.addr]),
        &[("SLIPWAY_GATEWAY_JWKS_URL", &jwks_url), ("SLIPWAY_GATEWAY_JWT_ISSUER", &config.jwt.issuer)],
    )
    .await;
    eventually(SOON, "in rotation", async || gw.healthy(app.addr).await).await;
    let call = async |token: Option<&str>| {
        let mut req =
            gw.client.get(format!("{}/orders", gw.base)).header("host", "x").header("x-user-id", "forged");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("answer")
    };
    let user = uuid::Uuid::new_v4();
    let none = call(None).await;
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    assert_eq!(call(Some("not.a.token")).await.status(), 401);
    assert_eq!(
        call(Some(&other.issue(user, uuid::Uuid::new_v4()))).await.status(),
        401,
        "signed by a key not in the JWKS"
    );
    assert_eq!(app.hits(), 0, "nothing unauthenticated reached the service");

    let good = call(Some(&keys.issue(user, uuid::Uuid::new_v4()))).await;
    assert_eq!(good.status(), 200);
    let seen: Value = good.json().await.expect("json");
    assert_eq!(seen["headers"]["x-user-id"], user.to_string(), "the verified user, not the forged header");
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_before_reaching_the_instance() {
    let app = Backend::start("app").await;
    let gw = spawn_gateway(&route("app", "", &[app.addr]), &[("SLIPWAY_BODY_LIMIT", "1024")]).await;
    eventually(SOON, "in rotation", async || gw.healthy(app.addr).await).await;
    let post = |size: usize| gw.client.post(format!("{}/upload", gw.base)).body(vec![b'x'; size]).send();
    let big = post(4096).await.expect("answer");
    assert_eq!(big.status(), 413);
    assert_eq!(big.headers()["content-type"], "application/problem+json");
    assert_eq!(app.hits(), 0, "the instance never saw it");
    assert_eq!(post(512).await.expect("answer").status(), 200, "under the limit passes");
    assert_eq!(app.hits(), 1);
}
