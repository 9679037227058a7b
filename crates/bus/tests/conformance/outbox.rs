//! JetStream with Postgres as its outbox: publishing in the service's transaction, and a
//! relay that dies midway losing nothing and duplicating nothing.

use std::collections::HashSet;
use std::time::Duration;

use bus::outbox::{Outboxed, RELAY_GROUP};
use bus::{Backend, Group, Handler as _, Publish};
use serde_json::json;
use testkit::eventually;

const LEASE: Duration = Duration::from_secs(30);

async fn outboxed() -> Outboxed {
    Outboxed::new(crate::pg().await, crate::jetstream().await)
}

type Stop = tokio::sync::oneshot::Sender<()>;

fn run_relay(bus: &Outboxed) -> (Stop, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay = bus.relay();
    let task = tokio::spawn(async move {
        relay
            .run_until(async move {
                let _ = stopped.await;
            })
            .await
            .expect("the relay runs");
    });
    (stop, task)
}

#[tokio::test]
async fn only_committed_events_reach_jetstream_through_the_relay_each_once() {
    let bus = outboxed().await;
    bus.subscribe(&Group::new("g"), &["job"]).await.expect("subscribe");
    let pool = bus.outbox().pool().clone();
    let mut tx = pool.begin().await.expect("begin");
    bus::pg::publish(&mut tx, &Publish::new("job", json!({ "v": "rolled back" }))).await.expect("publish");
    tx.rollback().await.expect("rollback");
    let mut tx = pool.begin().await.expect("begin");
    for v in 0..3 {
        bus::pg::publish(&mut tx, &Publish::new("job", json!({ "v": v }))).await.expect("publish");
    }
    tx.commit().await.expect("commit");

    let (stop, task) = run_relay(&bus);
    let mut got = Vec::new();
    eventually(Duration::from_secs(10), "the three committed events on JetStream", async || {
        got.extend(bus.claim("g", "t", 10, LEASE).await.expect("claim"));
        got.len() >= 3
    })
    .await;
    let _ = stop.send(());
    task.await.expect("relay task");
    let values: Vec<_> = got.iter().map(|d| d.payload["v"].clone()).collect();
    assert_eq!(values, [json!(0), json!(1), json!(2)], "in order, the rolled-back one nowhere");
    assert!(bus.claim("g", "t", 10, LEASE).await.expect("claim").is_empty(), "each once");
}

#[tokio::test]
async fn a_relay_that_dies_between_publishing_and_acknowledging_loses_and_duplicates_nothing() {
    let bus = outboxed().await;
    bus.subscribe(&Group::new("g"), &["job"]).await.expect("subscribe");
    let batch: Vec<Publish> = (0..50).map(|i| Publish::new("job", json!({ "i": i }))).collect();
    let ids: HashSet<_> = bus.publish_many(&batch).await.expect("publish").into_iter().flatten().collect();

    // The doomed relay: claims from the outbox, publishes to JetStream, dies before it
    // acknowledges (so its short leases run out and the outbox hands the events out again).
    let doomed =
        bus.outbox().claim(RELAY_GROUP, "doomed", 100, Duration::from_millis(300)).await.expect("claim");
    assert_eq!(doomed.len(), 50);
    let relay = bus.relay_handler();
    for d in &doomed {
        relay.handle(d).await.expect("published to JetStream");
    }

    // A healthy relay takes over once the leases expire, and publishes all 50 again.
    let (stop, task) = run_relay(&bus);
    let mut got = Vec::new();
    eventually(Duration::from_secs(10), "every event in the group", async || {
        got.extend(bus.claim("g", "t", 100, LEASE).await.expect("claim"));
        got.len() >= 50
    })
    .await;
    eventually(Duration::from_secs(10), "the outbox drained by the second relay", async || {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM bus.deliveries")
            .fetch_one(bus.outbox().pool())
            .await
            .expect("count")
            == 0
    })
    .await;
    let _ = stop.send(());
    task.await.expect("relay task");
    let seen: HashSet<_> = got.iter().map(|d| d.id).collect();
    assert_eq!((got.len(), &seen), (50, &ids), "every event once");
    assert!(bus.claim("g", "t", 100, LEASE).await.expect("claim").is_empty(), "and no duplicate later");
}

#[tokio::test]
async fn an_unreachable_nats_is_a_clear_error_at_start_naming_where_it_looked() {
    let port = testkit::free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let error = bus::nats::JsBus::connect(&url, "bus").await.expect_err("nobody listens there").to_string();
    assert!(started.elapsed() < Duration::from_secs(10), "it does not hang");
    assert!(error.contains(&url) && error.contains("nats-server"), "{error}");
}
