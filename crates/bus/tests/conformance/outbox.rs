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

#[tokio::test]
async fn a_completion_in_the_handlers_transaction_on_jetstream_commits_its_writes_once_though_the_ack_was_lost()
 {
    let namespace = testkit::nats::namespace().await;
    let js = bus::nats::JsBus::connect(&testkit::nats::url(), &namespace).await.expect("NATS");
    let bus = bus::AnyBus::Nats(Outboxed::new(crate::pg().await, js));
    let bus::AnyBus::Nats(outboxed) = &bus else { unreachable!() };
    let pool = outboxed.outbox().pool().clone();
    sqlx::query("CREATE TABLE public.effects (message_id uuid NOT NULL)")
        .execute(&pool)
        .await
        .expect("table");
    bus.subscribe(&Group::new("g"), &["job"]).await.expect("subscribe");
    bus.publish(&Publish::new("job", json!({}))).await.expect("publish");
    let (stop, task) = run_relay(outboxed);
    let lease = Duration::from_millis(300);
    let mut first = Vec::new();
    eventually(Duration::from_secs(10), "the event on JetStream", async || {
        first = bus.claim("g", "t", 1, lease).await.expect("claim");
        !first.is_empty()
    })
    .await;
    let effect = async |d: &bus::Delivery| {
        let mut tx = pool.begin().await.expect("begin");
        sqlx::query("INSERT INTO public.effects VALUES ($1)")
            .bind(d.id)
            .execute(&mut *tx)
            .await
            .expect("effect");
        let first = bus.complete_in(&mut tx, d).await.expect("complete in the transaction");
        if first { tx.commit().await } else { tx.rollback().await }.expect("end");
        first
    };
    // The handler's writes commit with the record; the acknowledgement to JetStream is lost
    // (the instance died), so the event comes back when its lease ends.
    assert!(effect(&first[0]).await, "the first attempt commits");
    let mut again = Vec::new();
    eventually(Duration::from_secs(10), "redelivered, its acknowledgement lost", async || {
        again = bus.claim("g", "t", 1, lease).await.expect("claim");
        !again.is_empty()
    })
    .await;
    assert_eq!(again[0].id, first[0].id);
    assert!(!effect(&again[0]).await, "the redelivery finds it handled and rolls back");
    let effects: i64 =
        sqlx::query_scalar("SELECT count(*) FROM public.effects").fetch_one(&pool).await.expect("count");
    assert_eq!(effects, 1, "the writes committed once");

    // A worker whose handler completes in its transaction acknowledges to JetStream after
    // it, so nothing stays pending (it would come back forever otherwise).
    bus.publish(&Publish::new("job", json!({}))).await.expect("publish");
    let handler = InTransaction { bus: bus.clone(), pool: pool.clone() };
    let worker = bus::Worker::new(bus.clone(), handler, bus::WorkerConfig::new(Group::new("g"), &["job"]));
    let (stop_worker, stopped) = tokio::sync::oneshot::channel::<()>();
    let working = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));
    eventually(Duration::from_secs(20), "both events handled and acknowledged", async || {
        let effects: i64 =
            sqlx::query_scalar("SELECT count(*) FROM public.effects").fetch_one(&pool).await.expect("count");
        effects == 2 && testkit::nats::unsettled(&namespace).await.0 == 0
    })
    .await;
    let _ = stop_worker.send(());
    working.await.expect("worker task").expect("worker");
    let _ = stop.send(());
    task.await.expect("relay task");
}

/// Writes an effect and completes the delivery in one transaction, as auth and the mailer do.
struct InTransaction {
    bus: bus::AnyBus,
    pool: sqlx::PgPool,
}

impl bus::Handler for InTransaction {
    async fn handle(&self, d: &bus::Delivery) -> Result<bus::Handled, bus::HandlerError> {
        let fail = |e: bus::BusError| bus::HandlerError::Retry(e.into());
        let mut tx = self.pool.begin().await.map_err(|e| fail(e.into()))?;
        sqlx::query("INSERT INTO public.effects VALUES ($1)")
            .bind(d.id)
            .execute(&mut *tx)
            .await
            .map_err(|e| fail(e.into()))?;
        if self.bus.complete_in(&mut tx, d).await.map_err(fail)? {
            tx.commit().await.map_err(|e| fail(e.into()))?;
        }
        Ok(bus::Handled::Acknowledged)
    }
}
