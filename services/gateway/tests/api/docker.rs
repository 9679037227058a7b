//! Docker discovery against a real engine: containers opt in with labels, join one route per
//! compose service, leave it the moment they are killed, and the gateway follows a restarted
//! daemon. The engine is shared, so these tests run one at a time (see .config/nextest.toml).

use std::collections::HashSet;
use std::time::Duration;

use testkit::docker::{self, Container};
use testkit::eventually;

use crate::helpers::spawn_gateway;

const WAIT: Duration = Duration::from_secs(60);

/// The body (the container's hostname) of a GET through the gateway, or its status.
async fn answer(gw: &crate::helpers::Gateway, host: &str) -> Result<String, u16> {
    let res = gw.get(host, "/").await;
    match res.status().as_u16() {
        200 => Ok(res.text().await.expect("body").trim().to_string()),
        other => Err(other),
    }
}

/// The labels that put a container on port 8000 behind `host`, as compose service `service`.
fn route_labels(host: &str, service: &str) -> Vec<String> {
    vec![
        format!("slipway.host={host}"),
        "slipway.port=8000".to_string(),
        "slipway.health=/".to_string(),
        format!("com.docker.compose.service={service}"),
    ]
}

#[tokio::test]
async fn docker_discovery_adds_started_containers_drops_killed_ones_and_follows_a_restarted_daemon() {
    docker::engine().await;
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let host = format!("{run}.docker.test");
    let labels = route_labels(&host, &format!("whoami-{run}"));
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let gw = spawn_gateway(
        "",
        &[("SLIPWAY_GATEWAY_DOCKER_SOCKET", "/var/run/docker.sock"), ("SLIPWAY_GATEWAY_DOCKER_RESYNC", "1h")],
    )
    .await;
    assert_eq!(answer(&gw, &host).await, Err(404), "nothing routes to this host yet");

    let first = Container::web(8000, &labels).await;
    eventually(WAIT, "the started container to serve through the gateway", async || {
        answer(&gw, &host).await.as_deref() == Ok(first.short_id())
    })
    .await;

    let second = Container::web(8000, &labels).await;
    let mut seen = HashSet::new();
    eventually(WAIT, "both instances of the scaled service to answer", async || {
        if let Ok(who) = answer(&gw, &host).await {
            seen.insert(who);
        }
        seen.contains(second.short_id()) && seen.contains(first.short_id())
    })
    .await;
    assert_eq!(gw.instances(&format!("whoami-{run}")).await, 2, "one route for the compose service");

    // `docker stop` on a container that ignores SIGTERM (it keeps serving until the 30 s
    // timeout): the gateway drains it at the stop, while it still runs, not when it dies.
    let stubborn = Container::stubborn_web(8000, &labels).await;
    eventually(WAIT, "the third instance to join", async || {
        gw.instances(&format!("whoami-{run}")).await == 3
    })
    .await;
    let stopping = stubborn.id.clone();
    let stop = tokio::spawn(async move { docker::docker(&["stop", "-t", "30", &stopping]).await });
    eventually(WAIT, "the stopping container to leave the route", async || {
        gw.instances(&format!("whoami-{run}")).await == 2
    })
    .await;
    assert_eq!(
        docker::docker(&["inspect", "-f", "{{.State.Running}}", &stubborn.id]).await,
        "true",
        "drained while it still runs"
    );
    docker::docker(&["kill", &stubborn.id]).await;
    stop.await.expect("docker stop returns");

    docker::docker(&["kill", &first.id]).await;
    eventually(WAIT, "the killed container to leave the route", async || {
        gw.instances(&format!("whoami-{run}")).await == 1
    })
    .await;
    for _ in 0..20 {
        assert_eq!(answer(&gw, &host).await.as_deref(), Ok(second.short_id()), "only the live one answers");
    }

    // The daemon stops its containers when it stops; the route stays known and answers 503.
    docker::restart().await;
    eventually(WAIT, "the route to answer 503 once its containers are gone", async || {
        answer(&gw, &host).await == Err(503)
    })
    .await;
    let third = Container::web(8000, &labels).await;
    eventually(WAIT, "a container started after the restart to be discovered", async || {
        answer(&gw, &host).await.as_deref() == Ok(third.short_id())
    })
    .await;
}

#[tokio::test]
async fn docker_discovery_keeps_to_its_compose_project_on_a_shared_engine() {
    docker::engine().await;
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let host = format!("{run}.project.test");
    let labels = |project: &str| {
        vec![
            format!("slipway.host={host}"),
            "slipway.port=8000".to_string(),
            "slipway.health=/".to_string(),
            format!("com.docker.compose.project={project}"),
            format!("com.docker.compose.service=web-{run}"),
        ]
    };
    let ours = format!("ours-{run}");
    let gw = spawn_gateway(
        "",
        &[
            ("SLIPWAY_GATEWAY_DOCKER_SOCKET", "/var/run/docker.sock"),
            ("SLIPWAY_GATEWAY_DOCKER_PROJECT", &ours),
        ],
    )
    .await;
    let theirs_labels = labels(&format!("theirs-{run}"));
    let theirs = Container::web(8000, &theirs_labels.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let ours_labels = labels(&ours);
    let mine = Container::web(8000, &ours_labels.iter().map(String::as_str).collect::<Vec<_>>()).await;
    eventually(WAIT, "our project's container to serve", async || {
        answer(&gw, &host).await.as_deref() == Ok(mine.short_id())
    })
    .await;
    assert_eq!(gw.instances(&format!("web-{run}")).await, 1, "the other project's container is not routed");
    for _ in 0..10 {
        assert_eq!(answer(&gw, &host).await.as_deref(), Ok(mine.short_id()), "never {}", theirs.short_id());
    }
}

#[tokio::test]
async fn docker_discovery_through_the_read_only_proxy_routes_containers_and_refuses_everything_else() {
    docker::engine().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let proxy = listener.local_addr().expect("addr");
    tokio::spawn(gateway::docker_proxy::serve(
        listener,
        "/var/run/docker.sock".into(),
        std::future::pending(),
    ));

    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let host = format!("{run}.proxied.test");
    let labels = [
        format!("slipway.host={host}"),
        "slipway.port=8000".into(),
        "slipway.health=/".into(),
        format!("com.docker.compose.service=p-{run}"),
    ];
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let secret = format!("SLIPWAY_DATABASE_PASSWORD=hunter2-{run}");
    let web = Container::web_with(8000, &labels, &["-e", &secret]).await;
    let gw = spawn_gateway("", &[("SLIPWAY_GATEWAY_DOCKER_SOCKET", &format!("tcp://{proxy}"))]).await;
    eventually(WAIT, "the container to serve through the gateway, found through the proxy", async || {
        answer(&gw, &host).await.as_deref() == Ok(web.short_id())
    })
    .await;

    let call = async |method: &str, path: &str| {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(proxy).await.expect("connect");
        let req =
            format!("{method} {path} HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.expect("read");
        String::from_utf8_lossy(&out).into_owned()
    };
    let inspected = call("GET", &format!("/v1.41/containers/{}/json", web.id)).await;
    assert!(inspected.starts_with("HTTP/1.1 200"), "{inspected}");
    assert!(inspected.contains(&format!("slipway.host\":\"{host}")), "labels pass: {inspected}");
    assert!(!inspected.contains("hunter2"), "a container's environment never passes: {inspected}");
    for (method, path) in [
        ("POST", "/v1.41/containers/create".to_string()),
        ("POST", format!("/v1.41/containers/{}/kill", web.id)),
        ("DELETE", format!("/v1.41/containers/{}", web.id)),
        ("GET", format!("/v1.41/containers/{}/logs", web.id)),
        ("POST", format!("/v1.41/containers/{}/exec", web.id)),
    ] {
        let refused = call(method, &path).await;
        assert!(refused.starts_with("HTTP/1.1 403"), "{method} {path}: {refused}");
    }
    assert_eq!(docker::docker(&["inspect", "-f", "{{.State.Running}}", &web.id]).await, "true");
}

#[tokio::test]
async fn a_starting_gateway_is_ready_only_once_the_containers_on_their_way_are_healthy_and_routed() {
    docker::engine().await;
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let host = format!("{run}.starting.test");
    let labels = route_labels(&host, &format!("slow-{run}"));
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    // Healthy only once /www/ok exists: starting until the test says so.
    let health = [
        "--health-cmd=test -f /www/ok",
        "--health-interval=5s",
        "--health-start-period=60s",
        "--health-start-interval=100ms",
    ];
    let slow = Container::web_with(8000, &labels, &health).await;
    let gw = spawn_gateway(
        "",
        &[("SLIPWAY_GATEWAY_DOCKER_SOCKET", "/var/run/docker.sock"), ("SLIPWAY_GATEWAY_WARM_UP", "60s")],
    )
    .await;
    let readyz = async || gw.client.get(format!("{}/readyz", gw.admin)).send().await.expect("admin").status();
    // Discovery lists the engine within milliseconds; a gateway warm then would route nothing
    // to the starting container yet (404), however healthy Docker calls it a moment later.
    for _ in 0..20 {
        assert_eq!(readyz().await, 503, "not ready while an instance it will route is starting");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    docker::docker(&["exec", &slow.id, "sh", "-c", ": > /www/ok"]).await;
    eventually(WAIT, "the gateway ready once the container is healthy", async || readyz().await == 200).await;
    assert_eq!(answer(&gw, &host).await.as_deref(), Ok(slow.short_id()), "routed from its first moment");
}
