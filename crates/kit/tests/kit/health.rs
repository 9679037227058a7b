//! `/healthz` and `/readyz` against a Postgres that comes and goes.

use std::time::Duration;

use axum::Router;
use kit::config::HttpConfig;
use kit::health::Readiness;
use kit::server::{Server, service_router};
use testkit::{TcpProxy, TestDb, eventually};

fn http() -> HttpConfig {
    HttpConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        shutdown_grace: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        body_limit: 1024,
        trusted_proxies: Default::default(),
    }
}

#[tokio::test]
async fn readyz_turns_503_when_postgres_is_unreachable_and_200_when_it_is_back_without_a_restart() {
    let db = TestDb::create().await;
    let proxy = TcpProxy::start(db.addr()).await;
    let pool = kit::db::pool(&testkit::db_config(&db.url_via(proxy.port())), "public").expect("pool");

    let router = service_router(Router::new(), Readiness::new().postgres(pool), &http());
    let server = Server::bind(http().addr, router, Duration::from_secs(1)).await.expect("bind");
    let url = format!("http://127.0.0.1:{}/readyz", server.port());
    tokio::spawn(server.run_until(std::future::pending()));
    let client = reqwest::Client::new();
    let status = async || client.get(&url).send().await.expect("readyz answers").status().as_u16();

    assert_eq!(status().await, 200);

    proxy.cut();
    eventually(Duration::from_secs(10), "readyz reports 503", async || status().await == 503).await;
    let down = client.get(&url).send().await.expect("readyz");
    assert_eq!(down.headers()["content-type"], "application/problem+json");
    assert!(down.headers().contains_key("retry-after"));
    let body: serde_json::Value = down.json().await.expect("json");
    assert_eq!(body["checks"]["postgres"], "down", "{body}");
    assert_eq!(body["type"], "tag:slipway.dev,2026:problem/not-ready");

    proxy.restore();
    eventually(Duration::from_secs(10), "readyz reports 200 again", async || status().await == 200).await;
}

#[tokio::test]
async fn healthz_answers_with_its_release_while_dependencies_are_down() {
    let readiness = Readiness::new().check("broken", async || anyhow::bail!("always down")).release("v7");
    let router = service_router(Router::new(), readiness, &http());
    let server = Server::bind(http().addr, router, Duration::from_secs(1)).await.expect("bind");
    let port = server.port();
    tokio::spawn(server.run_until(std::future::pending()));
    let get = async |path: &str| {
        reqwest::get(format!("http://127.0.0.1:{port}{path}")).await.expect("answers").status().as_u16()
    };
    assert_eq!(get("/healthz").await, 200);
    assert_eq!(get("/readyz").await, 503);
    let body: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(body["release"], "v7");
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    assert!(
        kit::service::probe_ready(&kit::service::Probe::Tcp(addr)).await.is_err(),
        "the healthcheck subcommand's probe says not ready"
    );
}
