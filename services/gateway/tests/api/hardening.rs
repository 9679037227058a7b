//! What the edge refuses or rewrites before routing: smuggled identity headers, paths that
//! climb around a protected route, ambiguous hosts, oversized heads and bodies.

use std::time::Duration;

use serde_json::Value;
use testkit::eventually;

use crate::helpers::{Backend, Issuer, route, spawn_gateway};

const SOON: Duration = Duration::from_secs(10);

#[tokio::test]
async fn connection_cannot_remove_the_verified_identity_and_underscored_names_are_dropped() {
    let issuer = Issuer::start().await;
    let app = Backend::start("api").await;
    let gw = spawn_gateway(&route("api", "protected = true", &[app.addr]), &issuer.vars()).await;
    eventually(SOON, "in rotation", async || gw.healthy(app.addr).await).await;
    let (token, user) = issuer.token();
    let res = gw
        .client
        .get(format!("{}/orders", gw.base))
        .header("host", "x")
        .bearer_auth(&token)
        .header("connection", "keep-alive, x-user-id, x-forwarded-for, x-request-id")
        .header("x_user_id", "forged-admin")
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), 200);
    let seen: Value = res.json().await.expect("json");
    let h = &seen["headers"];
    assert_eq!(h["x-user-id"], user.to_string(), "the gateway's identity header survives Connection:");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert!(h["x-request-id"].is_string());
    assert!(h.get("x_user_id").is_none(), "an underscored look-alike never reaches the instance: {h}");
}

#[tokio::test]
async fn dot_segments_are_resolved_before_routing_and_encoded_separators_refused() {
    let issuer = Issuer::start().await;
    let app = Backend::start("api").await;
    let routes = format!(
        "{}{}",
        route("private", "path = \"/api\"\nprotected = true", &[app.addr]),
        route("public", "path = \"/api/public\"", &[app.addr])
    );
    let gw = spawn_gateway(&routes, &issuer.vars()).await;
    eventually(SOON, "in rotation", async || gw.healthy(app.addr).await).await;
    let get = async |path: &str| gw.raw(&format!("GET {path} HTTP/1.1\r\nHost: x"), b"").await;

    let (status, body) = get("/api/public/./x//y").await;
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(seen["path"], "/api/public/x/y", "the instance gets the path the gateway routed on");
    assert_eq!(
        get("/api/public/../admin").await.0,
        401,
        "climbing out of the public route lands in the protected one"
    );
    assert_eq!(get("/API/admin").await.0, 401, "case does not get around a route");
    for path in ["/api/public/%2e%2e/admin", "/api/public%2f..%2fadmin", "/api/public/..%5cadmin", "/../etc"]
    {
        assert_eq!(get(path).await.0, 400, "{path}");
    }
    assert_eq!(app.hits(), 1, "only the public request reached the instance");
}

#[tokio::test]
async fn a_missing_or_repeated_host_is_refused_and_a_trailing_dot_is_ignored() {
    let app = Backend::start("shop").await;
    let gw = spawn_gateway(&route("shop", "host = \"shop.example.com\"", &[app.addr]), &[]).await;
    eventually(SOON, "in rotation", async || gw.healthy(app.addr).await).await;
    assert_eq!(gw.raw("GET / HTTP/1.1\r\nHost: shop.example.com.", b"").await.0, 200);
    assert_eq!(gw.raw("GET / HTTP/1.1", b"").await.0, 400, "HTTP/1.1 needs a Host");
    let twice = "GET / HTTP/1.1\r\nHost: shop.example.com\r\nHost: other.example.com";
    assert_eq!(gw.raw(twice, b"").await.0, 400);
    assert_eq!(app.hits(), 1);
}

#[tokio::test]
async fn an_oversized_header_line_or_head_is_refused_with_431() {
    let app = Backend::start("app").await;
    let gw = spawn_gateway(&route("app", "", &[app.addr]), &[]).await;
    eventually(SOON, "in rotation", async || gw.healthy(app.addr).await).await;
    let line = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}", "a".repeat(16 * 1024));
    assert_eq!(gw.raw(&line, b"").await.0, 431, "one 16 KiB line");
    let many: String = (0..6).map(|i| format!("\r\nX-Part-{i}: {}", "b".repeat(7000))).collect();
    assert_eq!(gw.raw(&format!("GET / HTTP/1.1\r\nHost: x{many}"), b"").await.0, 431, "42 KiB in all");
    let fine = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Ok: {}", "c".repeat(4000));
    assert_eq!(gw.raw(&fine, b"").await.0, 200);
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_answered_413() {
    let app = Backend::start("app").await;
    let gw = spawn_gateway(&route("app", "", &[app.addr]), &[("SLIPWAY_BODY_LIMIT", "1024")]).await;
    eventually(SOON, "in rotation", async || gw.healthy(app.addr).await).await;
    let head = "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked";
    let chunk = |n: usize| format!("{n:x}\r\n{}\r\n", "x".repeat(n));
    let big = format!("{}{}0\r\n\r\n", chunk(800), chunk(800));
    let (status, body) = gw.raw(head, big.as_bytes()).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("body-too-large"), "{body}");
    let small = format!("{}0\r\n\r\n", chunk(500));
    assert_eq!(gw.raw(head, small.as_bytes()).await.0, 200, "under the limit passes");
}
