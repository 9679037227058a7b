//! Routing by host and path prefix, and the problems for unknown and dead routes.

use std::time::Duration;

use testkit::eventually;

use crate::helpers::{Backend, route, spawn_gateway};

const SOON: Duration = Duration::from_secs(10);

#[tokio::test]
async fn requests_are_routed_by_host_and_longest_path_prefix_with_the_prefix_stripped() {
    let (web, auth, admin) =
        (Backend::start("web").await, Backend::start("auth").await, Backend::start("admin").await);
    let routes = [
        route("web", "", &[web.addr]),
        route("auth", "path = \"/api/auth\"\nstrip_prefix = true", &[auth.addr]),
        route("admin", "host = \"admin.example.com\"", &[admin.addr]),
    ]
    .concat();
    let gw = spawn_gateway(&routes, &[]).await;
    eventually(SOON, "all three pass their first check", async || gw.who("x", "/").await.is_ok()).await;
    eventually(SOON, "auth is in rotation", async || gw.who("x", "/api/auth/me").await.is_ok()).await;
    eventually(SOON, "admin is in rotation", async || gw.who("admin.example.com", "/").await.is_ok()).await;

    assert_eq!(gw.who("www.example.com", "/pricing").await, Ok("web".into()));
    assert_eq!(gw.who("www.example.com", "/api/auth/login").await, Ok("auth".into()));
    assert_eq!(gw.who("admin.example.com:8080", "/api/auth/login").await, Ok("admin".into()));
    let stripped: serde_json::Value =
        gw.get("x", "/api/auth/login?next=%2F").await.json().await.expect("json");
    assert_eq!(stripped["path"], "/login?next=%2F");
}

#[tokio::test]
async fn an_unknown_host_is_a_404_and_a_route_with_no_healthy_instance_a_503_both_problems_and_counted() {
    let dead = Backend::start_unready("dead").await;
    let routes = [route("only", "host = \"app.example.com\"", &[dead.addr])].concat();
    let gw = spawn_gateway(&routes, &[]).await;

    let unknown = gw.get("other.example.com", "/").await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.headers()["content-type"], "application/problem+json");
    assert!(unknown.headers().contains_key("x-request-id"));

    let down = gw.get("app.example.com", "/").await;
    assert_eq!(down.status(), 503, "not 404: the route exists, its instances are down");
    assert!(down.headers().contains_key("retry-after"));
    let body: serde_json::Value = down.json().await.expect("json");
    assert_eq!(body["type"], "tag:slipway.dev,2026:problem/no-healthy-instance");

    let metrics = gw
        .client
        .get(format!("{}/metrics", gw.admin))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("gateway_unknown_route_total 1"), "{metrics}");
    assert!(metrics.contains("gateway_no_healthy_instance_total 1"), "{metrics}");
    assert_eq!(dead.hits(), 0);

    let page = gw.client.get(format!("{}/", gw.admin)).send().await.expect("admin page");
    assert!(page.headers()["content-type"].to_str().expect("ascii").starts_with("text/html"));
    let page = page.text().await.expect("html");
    assert!(page.contains("<h2>only</h2>") && page.contains(&dead.addr.to_string()), "{page}");
    assert!(page.contains("unhealthy") && page.contains("1 no healthy instance"), "{page}");
}

#[tokio::test]
async fn a_new_instance_gets_no_traffic_before_its_first_passing_check() {
    let (old, new) = (Backend::start("old").await, Backend::start_unready("new").await);
    let gw = spawn_gateway(&route("app", "", &[old.addr, new.addr]), &[]).await;
    eventually(SOON, "the old instance is in rotation", async || gw.who("x", "/").await.is_ok()).await;
    for _ in 0..40 {
        assert_eq!(gw.who("x", "/").await, Ok("old".into()));
    }
    assert_eq!(new.hits(), 0, "the unready instance got nothing");
    new.set_ready(true);
    eventually(SOON, "the new instance joins after passing", async || {
        gw.who("x", "/").await == Ok("new".into())
    })
    .await;
}

#[tokio::test]
async fn a_routes_file_change_reroutes_new_requests_and_lets_in_flight_ones_finish() {
    let (blue, green) = (Backend::start("blue").await, Backend::start("green").await);
    let gw = spawn_gateway(&route("app", "", &[blue.addr]), &[]).await;
    eventually(SOON, "blue serves", async || gw.who("x", "/").await == Ok("blue".into())).await;

    let slow = gw.client.get(format!("{}/slow", gw.base)).header("host", "x").send();
    let in_flight = tokio::spawn(slow);
    eventually(SOON, "the slow request reached blue", async || blue.hits() >= 2).await;
    gw.rewrite(&route("app", "", &[green.addr]));
    eventually(SOON, "green takes over", async || gw.who("x", "/").await == Ok("green".into())).await;

    let finished = in_flight.await.expect("task").expect("the in-flight request completes");
    assert_eq!(finished.status(), 200);
    let body: serde_json::Value = finished.json().await.expect("json");
    assert_eq!(body["backend"], "blue");
    for _ in 0..20 {
        assert_eq!(gw.who("x", "/").await, Ok("green".into()));
    }

    gw.rewrite("this is not toml");
    let metrics = format!("{}/metrics", gw.admin);
    eventually(SOON, "the broken file is read and refused", async || {
        let text = gw.client.get(&metrics).send().await.expect("metrics").text().await.expect("text");
        !text.contains("gateway_reload_failures_total 0")
    })
    .await;
    assert_eq!(gw.who("x", "/").await, Ok("green".into()), "a broken file keeps the current routes");
}

#[tokio::test]
async fn round_robin_gives_each_instance_its_turn() {
    let backends = [Backend::start("a").await, Backend::start("b").await, Backend::start("c").await];
    let addrs: Vec<_> = backends.iter().map(|b| b.addr).collect();
    let gw = spawn_gateway(&route("rr", "balance = \"round_robin\"", &addrs), &[]).await;
    for b in &backends {
        eventually(SOON, "every instance in rotation", async || gw.healthy(b.addr).await).await;
    }
    for _ in 0..30 {
        assert!(gw.who("x", "/").await.is_ok());
    }
    let hits: Vec<usize> = backends.iter().map(Backend::hits).collect();
    assert_eq!(hits, vec![10, 10, 10], "even turns");
}

#[tokio::test]
async fn gateway_routes_prints_the_running_gateways_instances_from_its_admin_listener() {
    let backend = Backend::start("web").await;
    let gw = spawn_gateway(&route("web", "path = \"/\"", &[backend.addr]), &[]).await;
    eventually(SOON, "web is in rotation", async || gw.who("example.com", "/").await.is_ok()).await;
    let admin_port = gw.admin.rsplit(':').next().expect("a port");
    // The gateway under test runs on this runtime: the command is awaited, not blocked on.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("routes")
        .env_clear()
        .env("SLIPWAY_ENV", "test")
        .env("SLIPWAY_GATEWAY_ROUTES_PATH", "")
        .env("SLIPWAY_GATEWAY_ADMIN_PORT", admin_port)
        .output()
        .await
        .expect("gateway routes");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let routes: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let instance = &routes["routes"][0]["instances"][0];
    assert_eq!(routes["routes"][0]["name"], "web");
    assert_eq!(instance["addr"], backend.addr.to_string());
    assert_eq!(instance["available"], true);

    let closed = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("routes")
        .env_clear()
        .env("SLIPWAY_ENV", "test")
        .env("SLIPWAY_GATEWAY_ROUTES_PATH", "")
        .env("SLIPWAY_GATEWAY_ADMIN_PORT", testkit::free_port().to_string())
        .output()
        .expect("gateway routes");
    assert_eq!(closed.status.code(), Some(1), "no gateway there");
}

#[tokio::test]
async fn an_instance_slower_than_the_upstream_timeout_is_a_504_and_the_next_request_is_served() {
    let backend = Backend::start("app").await;
    let gw =
        spawn_gateway(&route("app", "", &[backend.addr]), &[("SLIPWAY_GATEWAY_UPSTREAM_TIMEOUT", "300ms")])
            .await;
    eventually(Duration::from_secs(10), "the instance in rotation", async || gw.healthy(backend.addr).await)
        .await;
    assert_eq!(gw.get("x", "/quick").await.status(), 200);
    let slow = gw.get("x", "/slow").await;
    assert_eq!(slow.status(), 504, "the instance takes 600 ms");
    let problem: serde_json::Value = slow.json().await.expect("json");
    assert_eq!(problem["status"], 504);
    for _ in 0..3 {
        assert_eq!(gw.get("x", "/quick").await.status(), 200);
    }
    let slow_again = gw.get("x", "/slow").await;
    assert_eq!(slow_again.status(), 504, "and again, with kept-alive connections to the instance");
}
