//! The standard server: its layers, limits, problems and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use kit::config::HttpConfig;
use kit::health::Readiness;
use kit::problem::{Problem, log_internal};
use kit::server::{Server, service_router};
use tokio::sync::{Notify, oneshot};

fn http(grace: Duration) -> HttpConfig {
    HttpConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        shutdown_grace: grace,
        request_timeout: Duration::from_secs(2),
        body_limit: 64,
        trusted_proxies: Default::default(),
    }
}

/// Signalled when a request reaches `/slow` or `/hang`, so a test knows it is in flight.
type Arrived = Arc<Notify>;

async fn slow(State(arrived): State<Arrived>) -> &'static str {
    arrived.notify_one();
    tokio::time::sleep(Duration::from_millis(700)).await;
    "finished"
}

async fn hang(State(arrived): State<Arrived>) -> &'static str {
    arrived.notify_one();
    std::future::pending().await
}

async fn failing() -> Problem {
    log_internal(&anyhow::anyhow!("connection refused").context("loading the user row"));
    Problem::internal()
}

fn api(arrived: Arrived) -> Router {
    Router::new()
        .route("/slow", get(slow))
        .route("/hang", get(hang))
        .route("/fail", get(failing))
        .route("/echo", post(|body: String| async move { body }))
        .with_state(arrived)
}

struct Running {
    base: String,
    arrived: Arrived,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(grace: Duration) -> Running {
    let config = http(grace);
    let arrived = Arrived::default();
    let router = service_router(api(arrived.clone()), Readiness::new(), &config);
    let server = Server::bind(config.addr, router, grace).await.expect("bind port 0");
    let base = format!("http://127.0.0.1:{}", server.port());
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(server.run_until(async move {
        let _ = stopped.await;
    }));
    Running { base, arrived, stop: Some(stop), done }
}

#[tokio::test]
async fn an_in_flight_request_finishes_after_shutdown_begins_and_new_connections_are_refused() {
    let mut app = start(Duration::from_secs(10)).await;
    let url = format!("{}/slow", app.base);
    let in_flight = tokio::spawn(async move { reqwest::get(url).await?.text().await });
    app.arrived.notified().await;
    app.stop.take().expect("stop").send(()).expect("server running");

    assert_eq!(in_flight.await.expect("task").expect("the request completes"), "finished");
    app.done.await.expect("task").expect("server stops cleanly");
    let after = reqwest::get(format!("{}/healthz", app.base)).await;
    assert!(after.is_err(), "nothing listens after shutdown");
}

#[tokio::test]
async fn the_grace_period_bounds_how_long_shutdown_waits() {
    let mut app = start(Duration::from_millis(300)).await;
    let url = format!("{}/hang", app.base);
    let _hanging = tokio::spawn(async move { reqwest::get(url).await });
    app.arrived.notified().await;
    app.stop.take().expect("stop").send(()).expect("running");
    let stopped = tokio::time::timeout(Duration::from_secs(5), app.done).await;
    stopped.expect("shutdown ends after the grace period").expect("task").expect("ok");
}

#[tokio::test]
async fn the_request_id_is_kept_when_plain_made_when_absent_and_replaced_when_unsafe() {
    let app = start(Duration::from_secs(1)).await;
    let client = reqwest::Client::new();
    let url = format!("{}/healthz", app.base);
    let id_of = async |sent: Option<&str>| {
        let mut req = client.get(&url);
        if let Some(id) = sent {
            req = req.header("x-request-id", id);
        }
        let res = req.send().await.expect("answers");
        res.headers()["x-request-id"].to_str().expect("ascii").to_string()
    };
    assert_eq!(id_of(Some("gw-123.abc")).await, "gw-123.abc");
    let made = id_of(None).await;
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
    let replaced = id_of(Some("bad id\" injected=1")).await;
    assert_ne!(replaced, "bad id\" injected=1");
    assert!(uuid::Uuid::parse_str(&replaced).is_ok(), "{replaced}");
}

#[tokio::test]
async fn errors_are_problem_json_and_a_500_body_carries_no_internal_detail() {
    let app = start(Duration::from_secs(1)).await;
    let client = reqwest::Client::new();

    let missing = client.get(format!("{}/nope", app.base)).send().await.expect("404");
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = missing.json().await.expect("json");
    assert_eq!(body["type"], "tag:slipway.dev,2026:problem/not-found");
    assert_eq!(body["status"], 404);

    let failed = client.get(format!("{}/fail", app.base)).send().await.expect("500");
    assert_eq!(failed.status(), 500);
    let text = failed.text().await.expect("body");
    assert!(!text.contains("connection refused") && !text.contains("user row"), "{text}");
    assert!(text.contains("problem/internal"), "{text}");

    let big = client.post(format!("{}/echo", app.base)).body("x".repeat(65)).send().await.expect("413");
    assert_eq!(big.status(), 413, "the body limit is on by default");
    let small = client.post(format!("{}/echo", app.base)).body("x".repeat(64)).send().await.expect("200");
    assert_eq!(small.status(), 200);
}

#[tokio::test]
async fn every_problem_body_carries_the_id_of_its_request() {
    let app = start(Duration::from_secs(1)).await;
    let client = reqwest::Client::new();
    for (path, status) in [("/nope", 404), ("/fail", 500), ("/hang", 503)] {
        let id = format!("req-{}", status);
        let res = client
            .get(format!("{}{path}", app.base))
            .header("x-request-id", &id)
            .send()
            .await
            .expect("answers");
        assert_eq!(res.status(), status, "{path}");
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["request_id"], id.as_str(), "{path}: {body}");
    }
}

#[tokio::test]
async fn a_request_past_the_timeout_gets_a_503_problem() {
    let app = start(Duration::from_secs(1)).await;
    let res = reqwest::get(format!("{}/hang", app.base)).await.expect("answers");
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["type"], "tag:slipway.dev,2026:problem/timeout");
}
