//! The edge's own work: rate limits, forwarded headers, request ids, body limits and access tokens.

use std::time::Duration;

use serde_json::Value;
use testkit::eventually;

use crate::helpers::{Backend, Issuer, route, signing_keys, spawn_gateway};

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
    let issuer = Issuer::start().await;
    let keys = &issuer.keys;
    let other = signing_keys(&[]);
    let app = Backend::start("api").await;
    let gw = spawn_gateway(&route("api", "protected = true", &[app.addr]), &issuer.vars()).await;
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
        call(Some(&other.issue(user, uuid::Uuid::new_v4()).expect("token"))).await.status(),
        401,
        "signed by a key not in the JWKS"
    );
    assert_eq!(app.hits(), 0, "nothing unauthenticated reached the service");

    let good = call(Some(&keys.issue(user, uuid::Uuid::new_v4()).expect("token"))).await;
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

#[tokio::test]
async fn expired_and_wrong_audience_tokens_are_refused_at_the_edge() {
    let issuer = Issuer::start().await;
    let expired = signing_keys(&[("SLIPWAY_AUTH_ACCESS_TTL", "0s")]);
    let foreign = signing_keys(&[("SLIPWAY_AUTH_JWT_AUDIENCE", "another-product")]);
    let both = serde_json::json!({ "keys": [
        issuer.keys.jwks()["keys"][0], expired.jwks()["keys"][0], foreign.jwks()["keys"][0],
    ]});
    issuer.serve(both);
    let app = Backend::start("api").await;
    let gw = spawn_gateway(&route("api", "protected = true", &[app.addr]), &issuer.vars()).await;
    eventually(SOON, "in rotation", async || gw.healthy(app.addr).await).await;
    let call = async |token: &str| {
        gw.client
            .get(format!("{}/x", gw.base))
            .header("host", "x")
            .bearer_auth(token)
            .send()
            .await
            .expect("answer")
    };
    let user = uuid::Uuid::new_v4();
    assert_eq!(
        call(&expired.issue(user, uuid::Uuid::new_v4()).expect("token")).await.status(),
        401,
        "expired"
    );
    assert_eq!(
        call(&foreign.issue(user, uuid::Uuid::new_v4()).expect("token")).await.status(),
        401,
        "another audience"
    );
    assert_eq!(call(&issuer.token().0).await.status(), 200, "the same JWKS, a good token");
    assert_eq!(app.hits(), 1);
}

#[tokio::test]
async fn an_unreachable_jwks_is_asked_once_per_window_not_once_per_request() {
    let issuer = Issuer::start().await;
    issuer.serve(Value::Null);
    let app = Backend::start("api").await;
    let gw = spawn_gateway(&route("api", "protected = true", &[app.addr]), &issuer.vars()).await;
    eventually(SOON, "in rotation", async || gw.healthy(app.addr).await).await;
    let (token, _) = issuer.token();
    for _ in 0..20 {
        let res =
            gw.client.get(format!("{}/x", gw.base)).header("host", "x").bearer_auth(&token).send().await;
        assert_eq!(res.expect("answer").status(), 401);
    }
    assert_eq!(issuer.fetches(), 1, "one failed fetch, then the window holds");
}

#[tokio::test]
async fn a_key_auth_stops_publishing_stops_being_trusted_at_the_next_refresh() {
    let issuer = Issuer::start().await;
    let next = signing_keys(&[]);
    let app = Backend::start("api").await;
    let mut vars = issuer.vars().to_vec();
    vars.push(("SLIPWAY_GATEWAY_JWKS_REFRESH", "200ms"));
    let gw = spawn_gateway(&route("api", "protected = true", &[app.addr]), &vars).await;
    eventually(SOON, "in rotation", async || gw.healthy(app.addr).await).await;
    let status = async |token: &str| {
        let res = gw.client.get(format!("{}/x", gw.base)).header("host", "x").bearer_auth(token).send().await;
        res.expect("answer").status().as_u16()
    };
    let (old_token, _) = issuer.token();
    assert_eq!(status(&old_token).await, 200);
    issuer.serve(next.jwks());
    eventually(SOON, "the removed key is dropped", async || status(&old_token).await == 401).await;
    assert_eq!(status(&next.issue(uuid::Uuid::new_v4(), uuid::Uuid::new_v4()).expect("token")).await, 200);
}
