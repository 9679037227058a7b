//! Failover with real processes: three backend processes (Python's http.server), one killed
//! with SIGKILL under a steady load.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use testkit::eventually;

use crate::helpers::{route, spawn_gateway};

struct Process(Child, std::net::SocketAddr);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn backend(name: &str) -> Process {
    let dir = std::env::temp_dir().join(format!("backend-{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("readyz"), "ok").expect("readyz");
    std::fs::write(dir.join("index.html"), name).expect("index");
    let port = testkit::free_port();
    let child = Command::new("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 http.server starts");
    Process(child, ([127, 0, 0, 1], port).into())
}

#[tokio::test]
async fn killing_one_of_three_instances_under_steady_load_fails_no_request() {
    let backends: Vec<Process> = ["one", "two", "three"].iter().map(|n| backend(n)).collect();
    let addrs: Vec<_> = backends.iter().map(|b| b.1).collect();
    let gw = spawn_gateway(&route("app", "", &addrs), &[]).await;
    for addr in &addrs {
        eventually(Duration::from_secs(20), "every instance in rotation", async || gw.healthy(*addr).await)
            .await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (client, url, stop, ok, failed) =
            (gw.client.clone(), format!("{}/", gw.base), stop.clone(), ok.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match client.get(&url).header("host", "x").send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    eventually(Duration::from_secs(20), "load is flowing", async || ok.load(Ordering::Relaxed) >= 100).await;
    let victim = &backends[0];
    kill(Pid::from_raw(i32::try_from(victim.0.id()).expect("pid")), Signal::SIGKILL).expect("SIGKILL");
    let at_kill = ok.load(Ordering::Relaxed);
    // Watched from the kill on, beside the load: once the victim's port is free, a server of
    // another test may bind it and pass the checks, so a look only at the end can miss it.
    let leaves = eventually(Duration::from_secs(10), "the dead instance leaves the rotation", async || {
        !gw.healthy(victim.1).await
    });
    let continues = eventually(Duration::from_secs(20), "load continues on the survivors", async || {
        ok.load(Ordering::Relaxed) >= at_kill + 300
    });
    tokio::join!(leaves, continues);
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("load task");
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "{} requests succeeded", ok.load(Ordering::Relaxed));
}
