//! SIGTERM, for real: its own test binary, since the signal goes to the whole process.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use kit::config::HttpConfig;
use kit::health::Readiness;
use kit::server::{Server, service_router};
use nix::sys::signal::{Signal, raise};

#[tokio::test]
async fn a_slow_in_flight_request_finishes_after_sigterm_and_the_server_then_stops() {
    let config = HttpConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        shutdown_grace: Duration::from_secs(10),
        request_timeout: Duration::from_secs(10),
        body_limit: 1024,
        trusted_proxies: Default::default(),
    };
    let (arrived_tx, arrived) = tokio::sync::oneshot::channel::<()>();
    let arrived_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(arrived_tx)));
    let slow = get(move || {
        if let Some(tx) = arrived_tx.lock().expect("lock").take() {
            let _ = tx.send(());
        }
        async {
            tokio::time::sleep(Duration::from_millis(800)).await;
            "finished"
        }
    });
    let router = service_router(Router::new().route("/slow", slow), Readiness::new(), &config);
    let server = Server::bind(config.addr, router, config.shutdown_grace).await.expect("bind");
    let base = format!("http://127.0.0.1:{}", server.port());
    let serving = tokio::spawn(server.run_until_stopped());

    let url = format!("{base}/slow");
    let in_flight = tokio::spawn(async move { reqwest::get(url).await?.text().await });
    arrived.await.expect("the request reached its handler");
    raise(Signal::SIGTERM).expect("raise SIGTERM");

    assert_eq!(in_flight.await.expect("task").expect("the request completes after SIGTERM"), "finished");
    let stopped = tokio::time::timeout(Duration::from_secs(5), serving).await;
    stopped.expect("the server stops once drained").expect("task").expect("clean stop");
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err(), "no longer listening");
}
