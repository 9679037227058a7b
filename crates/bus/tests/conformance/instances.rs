//! JetStream: instances of a service on one namespace, each with its own connection and its
//! own notes of what it claimed. The lease records they share fence the stale one, and a
//! publish wakes them on the namespace's wake subject.

use std::time::Duration;

use bus::nats::JsBus;
use bus::{Backend, FailState, Group, Publish};
use serde_json::json;
use testkit::eventually;

async fn two_instances() -> (JsBus, JsBus) {
    let namespace = testkit::nats::namespace().await;
    let connect = async || JsBus::connect(&testkit::nats::url(), &namespace).await.expect("NATS at NATS_URL");
    (connect().await, connect().await)
}

#[tokio::test]
async fn an_instance_whose_lease_ran_out_can_neither_complete_nor_dead_letter_what_another_took_over() {
    let (slow, fast) = two_instances().await;
    let group = Group::new("g");
    slow.subscribe(&group, &["job"]).await.expect("subscribe");
    let id = slow.publish(&Publish::new("job", json!({ "n": 1 }))).await.expect("publish").expect("new");
    let stale = slow.claim("g", "slow", 10, Duration::from_millis(200)).await.expect("claim").remove(0);
    let mut current = Vec::new();
    eventually(Duration::from_secs(10), "the slow instance's lease to run out", async || {
        current = fast.claim("g", "fast", 10, Duration::from_secs(30)).await.expect("claim");
        !current.is_empty()
    })
    .await;
    assert_eq!((current[0].id, current[0].attempt), (id, 2));
    assert!(
        !slow.extend(&stale, Duration::from_secs(30)).await.expect("extend"),
        "the stale one cannot extend"
    );
    assert_eq!(fast.fail(&current[0], "current", true).await.expect("fail"), FailState::Dead);
    assert_eq!(slow.fail(&stale, "stale", true).await.expect("fail"), FailState::Fenced);
    assert!(!slow.complete(&stale).await.expect("complete"), "nor complete");
    let dead = fast.dead_letters("g").await.expect("dead letters");
    assert_eq!(dead.len(), 1, "the current attempt's dead letter stays: {dead:?}");
    assert_eq!((dead[0].attempt, dead[0].last_error.as_deref()), (2, Some("current")));
}

#[tokio::test]
async fn a_published_batch_wakes_sleeping_workers_with_a_message_on_the_wake_subject() {
    use futures_util::StreamExt as _;
    let namespace = testkit::nats::namespace().await;
    let bus = JsBus::connect(&testkit::nats::url(), &namespace).await.expect("NATS at NATS_URL");
    let listener = async_nats::connect(testkit::nats::url()).await.expect("NATS at NATS_URL");
    let mut wakes = listener.subscribe(format!("slipway-wake.{namespace}")).await.expect("subscribe");
    listener.flush().await.expect("flush");
    let batch: Vec<Publish> = (0..10).map(|n| Publish::new("job", json!({ "n": n }))).collect();
    bus.publish_many(&batch).await.expect("publish");
    let woken = tokio::time::timeout(Duration::from_secs(10), wakes.next()).await;
    assert!(matches!(woken, Ok(Some(_))), "a wake-up for the batch");
}

/// Counts each event's handlings, across instances.
#[derive(Clone, Default)]
struct Tally(std::sync::Arc<std::sync::Mutex<std::collections::HashMap<uuid::Uuid, u32>>>);

impl bus::Handler for Tally {
    async fn handle(&self, d: &bus::Delivery) -> Result<bus::Handled, bus::HandlerError> {
        *self.0.lock().expect("lock").entry(d.id).or_default() += 1;
        Ok(bus::Handled::Done)
    }
}

#[tokio::test]
async fn ten_instances_of_a_group_share_its_lease_records_and_handle_each_event_once() {
    // Their completion batches land in the same blocks of the records, so their
    // compare-and-swaps collide; a batch that lost every try would let its leases run out and
    // its events run twice.
    const EVENTS: usize = 4_000;
    let namespace = testkit::nats::namespace().await;
    let mut instances = Vec::new();
    for _ in 0..10 {
        instances.push(JsBus::connect(&testkit::nats::url(), &namespace).await.expect("NATS at NATS_URL"));
    }
    let group = Group::new("g");
    instances[0].subscribe(&group, &["job"]).await.expect("subscribe");
    let tally = Tally::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers: Vec<_> = instances
        .iter()
        .map(|bus| {
            let config = bus::WorkerConfig {
                concurrency: 64,
                poll: Duration::from_millis(200),
                ..bus::WorkerConfig::new(group.clone(), &["job"])
            };
            let mut stopped = stopped.clone();
            tokio::spawn(bus::Worker::new(bus.clone(), tally.clone(), config).run_until(async move {
                let _ = stopped.wait_for(|s| *s).await;
            }))
        })
        .collect();
    let mut ids = Vec::new();
    for start in (0..EVENTS).step_by(100) {
        let batch: Vec<Publish> =
            (start..start + 100).map(|n| Publish::new("job", json!({ "n": n }))).collect();
        ids.extend(
            instances[start / 100 % 10].publish_many(&batch).await.expect("publish").into_iter().flatten(),
        );
    }
    assert_eq!(ids.len(), EVENTS);
    eventually(Duration::from_secs(60), "every event handled", async || {
        tally.0.lock().expect("lock").len() == EVENTS
    })
    .await;
    // Until every acknowledgement is in: a completion that failed would show as a redelivery.
    eventually(Duration::from_secs(30), "every event settled", async || {
        testkit::nats::unsettled(&namespace).await.0 == 0
    })
    .await;
    let _ = stop.send(true);
    for worker in workers {
        worker.await.expect("worker task").expect("worker stops cleanly");
    }
    let tally = tally.0.lock().expect("lock");
    let twice = ids.iter().filter(|id| tally.get(id) != Some(&1)).count();
    assert_eq!(twice, 0, "every event handled once, none twice");
}
