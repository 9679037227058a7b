//! Replacing a gateway without refusing a connection: a successor binds the same port
//! (SO_REUSEPORT), takes connections once warm, and the old one stops accepting and closes
//! its kept-alive connections after one last answer each.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use testkit::eventually;

use crate::helpers::{Backend, spawn_gateway};

#[tokio::test]
async fn a_successor_on_the_same_port_takes_over_from_a_stopping_gateway_and_no_request_fails() {
    let backend = Backend::start("app").await;
    // An instance joins the rotation after three passed checks (300 ms): a successor that
    // took connections at once would answer 503 meanwhile.
    let routes = format!(
        "[[route]]\nname = \"app\"\ninstances = [\"{}\"]\nhealth = {{ interval = \"100ms\", timeout = \"500ms\", healthy = 3 }}\n",
        backend.addr
    );
    let old = spawn_gateway(&routes, &[]).await;
    eventually(Duration::from_secs(10), "the instance in rotation", async || old.healthy(backend.addr).await)
        .await;
    let port = old.base.rsplit(':').next().expect("port").to_string();

    // Steady load from clients that keep their connections alive.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (url, stop, ok, failed) = (format!("{}/", old.base), stop.clone(), ok.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
            while !stop.load(Ordering::Relaxed) {
                match client.get(&url).header("host", "x").send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(r) => {
                        eprintln!("answered {}", r.status());
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(e) => {
                        eprintln!("failed: {e:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    eventually(Duration::from_secs(10), "the load under way", async || ok.load(Ordering::Relaxed) > 50).await;

    // The successor binds the same port and waits until its instance has been checked.
    let new =
        spawn_gateway(&routes, &[("SLIPWAY_GATEWAY_PORT", &port), ("SLIPWAY_GATEWAY_WARM_UP", "10s")]).await;
    assert_eq!(new.base, old.base, "the successor shares the port");
    eventually(Duration::from_secs(10), "the successor warm and ready", async || {
        new.client.get(format!("{}/readyz", new.admin)).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;

    // The old one stops: it closes its listener, answers once more on each kept-alive
    // connection with `Connection: close`, and exits.
    old.stop().await;
    let at_stop = ok.load(Ordering::Relaxed);
    eventually(Duration::from_secs(10), "requests answered by the successor alone", async || {
        ok.load(Ordering::Relaxed) > at_stop + 200
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("load task");
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("handover: {ok} requests answered, {failed} failed");
    assert_eq!(failed, 0, "no request failed while one gateway replaced the other ({ok} answered)");
}

#[tokio::test]
async fn a_warming_gateway_takes_no_connection_and_is_not_ready_until_warm_or_its_warm_up_is_over() {
    // Discovery through an engine that does not answer: the gateway never hears its first
    // listing, so only the warm-up's limit lets it take connections.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let gw = spawn_gateway(
        "",
        &[("SLIPWAY_GATEWAY_DOCKER_SOCKET", &format!("tcp://{dead}")), ("SLIPWAY_GATEWAY_WARM_UP", "1500ms")],
    )
    .await;
    let readyz = async || gw.client.get(format!("{}/readyz", gw.admin)).send().await.expect("admin").status();
    assert_eq!(readyz().await, 503, "not ready while warming up");
    let refused = gw.client.get(format!("{}/", gw.base)).send().await;
    assert!(refused.is_err_and(|e| e.is_connect()), "no connection is taken while warming up");

    eventually(Duration::from_secs(10), "ready once the warm-up is over", async || readyz().await == 200)
        .await;
    assert_eq!(gw.get("x", "/").await.status(), 404, "then it answers");
}

#[tokio::test]
async fn a_connection_idle_when_the_gateway_stops_is_closed_once_the_drain_time_is_over() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let backend = Backend::start("app").await;
    let gw = spawn_gateway(
        &crate::helpers::route("app", "", &[backend.addr]),
        &[("SLIPWAY_GATEWAY_DRAIN_TIME", "200ms")],
    )
    .await;
    eventually(Duration::from_secs(10), "in rotation", async || gw.healthy(backend.addr).await).await;
    let mut stream = tokio::net::TcpStream::connect(gw.addr()).await.expect("connect");
    stream.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.expect("request");
    let mut first = [0u8; 12];
    stream.read_exact(&mut first).await.expect("an answer");
    assert_eq!(&first, b"HTTP/1.1 200");
    // Kept alive and quiet: neither its idle timeout (60 s) nor the grace period (30 s) is
    // what closes it, but the stop itself once the drain time is over.
    let stopping = tokio::spawn(gw.stop());
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(_))), "the idle connection was closed: {closed:?}");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("the gateway stopped without waiting out its grace period")
        .expect("the stop task");
}
