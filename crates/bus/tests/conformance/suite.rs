//! The checks, generic over the backend.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::{
    Backend, BusError, Delivery, FailState, Group, Handled, Handler, HandlerError, Publish, Worker,
    WorkerConfig,
};
use serde_json::json;
use testkit::eventually;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(30);
const SOON: Duration = Duration::from_secs(10);

fn group(name: &str) -> Group {
    Group {
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(400),
        ..Group::new(name)
    }
}

async fn publish<B: Backend>(bus: &B, topic: &str, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            bus.publish(&Publish::new(topic, json!({ "n": i })))
                .await
                .expect("publish")
                .expect("not a duplicate"),
        );
    }
    ids
}

async fn claim_all<B: Backend>(bus: &B, group: &str) -> Vec<Delivery> {
    bus.claim(group, "tester", 1000, LEASE).await.expect("claim")
}

pub async fn fan_out_reaches_every_subscribed_group_once<B: Backend>(bus: B) {
    bus.subscribe(&group("mailer"), &["user.created"]).await.expect("subscribe");
    bus.subscribe(&group("billing"), &["user.created", "invoice.paid"]).await.expect("subscribe");
    let ids = publish(&bus, "user.created", 3).await;
    publish(&bus, "invoice.paid", 1).await;

    let mailer = claim_all(&bus, "mailer").await;
    let billing = claim_all(&bus, "billing").await;
    assert_eq!(mailer.iter().map(|d| d.id).collect::<Vec<_>>(), ids, "in publish order");
    assert_eq!(billing.len(), 4);
    assert!(claim_all(&bus, "mailer").await.is_empty(), "leased deliveries are not handed out twice");
    for d in mailer.iter().chain(&billing) {
        assert!(bus.complete(d).await.expect("complete"));
    }
    assert!(claim_all(&bus, "mailer").await.is_empty());
    assert!(claim_all(&bus, "billing").await.is_empty());
}

pub async fn a_group_gets_what_was_published_while_none_of_its_instances_ran<B: Backend>(bus: B) {
    bus.publish(&Publish::new("user.created", json!({ "early": true })))
        .await
        .expect("publish before any subscriber");
    bus.subscribe(&group("mailer"), &["user.created"]).await.expect("subscribe");
    publish(&bus, "user.created", 2).await;
    let got = claim_all(&bus, "mailer").await;
    assert_eq!(got.len(), 3, "the waiting event and the two published while no instance ran");
    assert_eq!(got[0].payload["early"], true);
}

#[derive(Default)]
struct Counting {
    seen: Mutex<HashMap<Uuid, usize>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    pause: Option<Duration>,
}

#[derive(Clone)]
struct CountingHandler(Arc<Counting>);

impl Handler for CountingHandler {
    async fn handle(&self, d: &Delivery) -> Result<Handled, HandlerError> {
        let c = &self.0;
        let now = c.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        c.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if let Some(pause) = c.pause {
            tokio::time::sleep(pause).await;
        }
        *c.seen.lock().expect("lock").entry(d.id).or_default() += 1;
        c.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(Handled::Done)
    }
}

fn config(group: Group, concurrency: usize) -> WorkerConfig {
    WorkerConfig {
        concurrency,
        lease: Duration::from_secs(5),
        poll: Duration::from_millis(200),
        drain: Duration::from_secs(5),
        ..WorkerConfig::new(group, &["job"])
    }
}

type Stop = tokio::sync::oneshot::Sender<()>;

fn start<B: Backend>(
    bus: &B,
    handler: Arc<Counting>,
    config: WorkerConfig,
) -> (Stop, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::new(bus.clone(), CountingHandler(handler), config);
    let task = tokio::spawn(async move {
        worker
            .run_until(async move {
                let _ = stopped.await;
            })
            .await
            .expect("worker runs");
    });
    (stop, task)
}

pub async fn competing_consumers_in_a_group_handle_each_message_once<B: Backend>(bus: B) {
    bus.subscribe(&group("workers"), &["job"]).await.expect("subscribe");
    let ids = publish(&bus, "job", 200).await;
    let handler = Arc::new(Counting::default());
    let instances: Vec<_> =
        (0..4).map(|_| start(&bus, handler.clone(), config(group("workers"), 4))).collect();
    eventually(SOON, "all 200 handled", async || handler.seen.lock().expect("lock").len() == 200).await;
    for (stop, task) in instances {
        let _ = stop.send(());
        task.await.expect("worker task");
    }
    let seen = handler.seen.lock().expect("lock");
    assert!(ids.iter().all(|id| seen.get(id) == Some(&1)), "every message handled exactly once");
}

pub async fn a_dead_workers_lease_expires_and_another_instance_takes_over<B: Backend>(bus: B) {
    bus.subscribe(&group("g"), &["job"]).await.expect("subscribe");
    publish(&bus, "job", 1).await;
    let first = bus.claim("g", "doomed", 10, Duration::from_millis(300)).await.expect("claim");
    assert_eq!(first.len(), 1);
    assert!(bus.claim("g", "survivor", 10, LEASE).await.expect("claim").is_empty(), "leased");
    // The doomed worker never reports: its lease runs out.
    let mut taken = Vec::new();
    eventually(SOON, "the lease expires", async || {
        taken = bus.claim("g", "survivor", 10, LEASE).await.expect("claim");
        !taken.is_empty()
    })
    .await;
    assert_eq!(taken[0].id, first[0].id);
    assert_eq!(taken[0].attempt, 2);
}

/// One event on `g`, claimed by a slow worker whose short lease runs out and then by a fast
/// one: the stale attempt and the current one.
async fn stale_and_current<B: Backend>(bus: &B) -> (Delivery, Delivery) {
    bus.subscribe(&group("g"), &["job"]).await.expect("subscribe");
    publish(bus, "job", 1).await;
    let stale = bus.claim("g", "slow", 10, Duration::from_millis(200)).await.expect("claim").remove(0);
    let mut current = Vec::new();
    eventually(SOON, "the slow worker's lease expires", async || {
        current = bus.claim("g", "fast", 10, LEASE).await.expect("claim");
        !current.is_empty()
    })
    .await;
    (stale, current.remove(0))
}

pub async fn a_completion_from_a_stale_attempt_is_ignored<B: Backend>(bus: B) {
    let (stale, current) = stale_and_current(&bus).await;
    assert!(!bus.extend(&stale, LEASE).await.expect("extend"), "the stale attempt cannot extend");
    assert!(!bus.complete(&stale).await.expect("complete"), "nor complete");
    assert_eq!(bus.fail(&stale, "late", false).await.expect("fail"), FailState::Fenced, "nor fail");
    assert!(bus.extend(&current, LEASE).await.expect("extend"), "the current attempt still holds it");
    assert!(bus.complete(&current).await.expect("complete"));
}

pub async fn failures_back_off_then_dead_letter_with_the_last_error<B: Backend>(bus: B) {
    let policy = Group { max_attempts: 3, ..group("g") };
    bus.subscribe(&policy, &["job"]).await.expect("subscribe");
    let id = publish(&bus, "job", 1).await[0];
    for attempt in 1..=3 {
        let mut got = Vec::new();
        eventually(SOON, "the retry falls due", async || {
            got = claim_all(&bus, "g").await;
            !got.is_empty()
        })
        .await;
        assert_eq!(got[0].attempt, attempt);
        let state = bus.fail(&got[0], &format!("smtp said no ({attempt})"), false).await.expect("fail");
        if attempt < 3 {
            assert_eq!(state, FailState::Retrying);
            assert!(claim_all(&bus, "g").await.is_empty(), "not retried before its backoff");
        } else {
            assert_eq!(state, FailState::Dead);
        }
    }
    let dead = bus.dead_letters("g").await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].message_id, dead[0].attempt), (id, 3));
    assert_eq!(dead[0].last_error.as_deref(), Some("smtp said no (3)"));
    assert!(claim_all(&bus, "g").await.is_empty(), "a dead letter is not delivered");

    assert!(bus.retry_dead("g", id).await.expect("retry"));
    let again = claim_all(&bus, "g").await;
    assert_eq!((again.len(), again[0].attempt), (1, 1), "retried with fresh attempts");
    assert_eq!(bus.fail(&again[0], "still no", true).await.expect("fail"), FailState::Dead);
    assert!(bus.discard_dead("g", id).await.expect("discard"));
    assert!(bus.dead_letters("g").await.expect("dead letters").is_empty());
}

pub async fn a_permanent_failure_dead_letters_at_once<B: Backend>(bus: B) {
    bus.subscribe(&group("g"), &["job"]).await.expect("subscribe");
    publish(&bus, "job", 1).await;
    let d = claim_all(&bus, "g").await.remove(0);
    assert_eq!(bus.fail(&d, "550 no such mailbox", true).await.expect("fail"), FailState::Dead);
    assert_eq!(
        bus.dead_letters("g").await.expect("dead")[0].last_error.as_deref(),
        Some("550 no such mailbox")
    );
}

pub async fn a_stale_attempts_permanent_failure_neither_dead_letters_nor_replaces_the_current_ones<
    B: Backend,
>(
    bus: B,
) {
    let (stale, current) = stale_and_current(&bus).await;
    assert_eq!(
        bus.fail(&stale, "stale", true).await.expect("fail"),
        FailState::Fenced,
        "while current holds it"
    );
    assert!(bus.dead_letters("g").await.expect("dead").is_empty(), "no dead letter from a fenced attempt");
    assert_eq!(bus.fail(&current, "current", true).await.expect("fail"), FailState::Dead);
    assert_eq!(bus.fail(&stale, "stale", true).await.expect("fail"), FailState::Fenced, "after it is dead");
    let dead = bus.dead_letters("g").await.expect("dead");
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].attempt, dead[0].last_error.as_deref()), (2, Some("current")));
}

pub async fn a_delayed_message_waits_for_its_time<B: Backend>(bus: B) {
    bus.subscribe(&group("g"), &["job"]).await.expect("subscribe");
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(500);
    bus.publish(&Publish::new("job", json!({})).deliver_at(at)).await.expect("publish");
    assert!(claim_all(&bus, "g").await.is_empty(), "not before its time");
    let mut got = Vec::new();
    eventually(SOON, "the delayed message falls due", async || {
        got = claim_all(&bus, "g").await;
        !got.is_empty()
    })
    .await;
    assert!(chrono::Utc::now() >= at);
    assert_eq!(got[0].attempt, 1, "being held back until its time is not an attempt");
}

pub async fn a_second_publish_with_the_same_dedupe_key_is_a_no_op<B: Backend>(bus: B) {
    bus.subscribe(&group("g"), &["job"]).await.expect("subscribe");
    let first =
        bus.publish(&Publish::new("job", json!({ "v": 1 })).dedupe_key("order-42")).await.expect("publish");
    let second =
        bus.publish(&Publish::new("job", json!({ "v": 2 })).dedupe_key("order-42")).await.expect("publish");
    let other =
        bus.publish(&Publish::new("job", json!({ "v": 3 })).dedupe_key("order-43")).await.expect("publish");
    assert!(first.is_some() && other.is_some());
    assert_eq!(second, None);
    let got = claim_all(&bus, "g").await;
    assert_eq!(got.iter().map(|d| d.payload["v"].as_i64().expect("v")).collect::<Vec<_>>(), vec![1, 3]);
}

struct Stuck(Arc<AtomicUsize>);

impl Handler for Stuck {
    async fn handle(&self, _: &Delivery) -> Result<Handled, HandlerError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }
}

pub async fn shutdown_gives_back_unfinished_deliveries_without_spending_an_attempt<B: Backend>(bus: B) {
    bus.subscribe(&group("g"), &["job"]).await.expect("subscribe");
    publish(&bus, "job", 2).await;
    let started = Arc::new(AtomicUsize::new(0));
    let cfg = WorkerConfig { drain: Duration::from_millis(200), ..config(group("g"), 4) };
    let worker = Worker::new(bus.clone(), Stuck(started.clone()), cfg);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));
    eventually(SOON, "both deliveries are being handled", async || started.load(Ordering::SeqCst) == 2).await;
    let _ = stop.send(());
    task.await.expect("task").expect("worker stops cleanly");
    let back = claim_all(&bus, "g").await;
    assert_eq!(back.len(), 2, "released, not left to a lease");
    assert!(back.iter().all(|d| d.attempt == 1), "the interrupted attempt did not count");
}

pub async fn a_worker_never_runs_more_than_its_concurrency<B: Backend>(bus: B) {
    bus.subscribe(&group("g"), &["job"]).await.expect("subscribe");
    publish(&bus, "job", 30).await;
    let handler = Arc::new(Counting { pause: Some(Duration::from_millis(20)), ..Counting::default() });
    let (stop, task) = start(&bus, handler.clone(), config(group("g"), 3));
    eventually(SOON, "all handled", async || handler.seen.lock().expect("lock").len() == 30).await;
    let _ = stop.send(());
    task.await.expect("task");
    assert_eq!(handler.max_in_flight.load(Ordering::SeqCst), 3, "the limit is used, and never exceeded");
}

pub async fn a_sleeping_worker_is_woken_by_a_publish_not_by_its_poll_interval<B: Backend>(bus: B) {
    bus.subscribe(&group("g"), &["job"]).await.expect("subscribe");
    let handler = Arc::new(Counting::default());
    let cfg = WorkerConfig { poll: Duration::from_secs(600), ..config(group("g"), 2) };
    let (stop, task) = start(&bus, handler.clone(), cfg);
    // Let the worker reach its idle wait: one message through proves it is running.
    publish(&bus, "job", 1).await;
    eventually(SOON, "the first message", async || handler.seen.lock().expect("lock").len() == 1).await;
    publish(&bus, "job", 1).await;
    eventually(SOON, "a wake-up long before the 600 s poll", async || {
        handler.seen.lock().expect("lock").len() == 2
    })
    .await;
    let _ = stop.send(());
    task.await.expect("task");
}

pub async fn a_publish_racing_a_groups_first_subscribe_is_not_lost<B: Backend>(bus: B) {
    let publishers: Vec<_> = (0..40)
        .map(|i| {
            let bus = bus.clone();
            tokio::spawn(async move {
                bus.publish(&Publish::new("race", json!({ "i": i }))).await.expect("publish")
            })
        })
        .collect();
    bus.subscribe(&group("late"), &["race"]).await.expect("subscribe");
    for p in publishers {
        p.await.expect("publisher");
    }
    assert_eq!(
        claim_all(&bus, "late").await.len(),
        40,
        "every event reaches the group, before or after it subscribed"
    );
}

pub async fn a_batch_publish_fans_out_in_order_and_drops_used_dedupe_keys<B: Backend>(bus: B) {
    bus.subscribe(&group("a"), &["job"]).await.expect("subscribe");
    bus.subscribe(&group("b"), &["job", "other"]).await.expect("subscribe");
    bus.publish(&Publish::new("job", json!({ "n": "before" })).dedupe_key("used")).await.expect("publish");
    let batch = [
        Publish::new("job", json!({ "n": 0 })),
        Publish::new("other", json!({ "n": 1 })),
        Publish::new("job", json!({ "n": 2 })).dedupe_key("k"),
        Publish::new("job", json!({ "n": 3 })).dedupe_key("k"),
        Publish::new("job", json!({ "n": 4 })).dedupe_key("used"),
        Publish::new("job", json!({ "n": 5 })),
    ];
    let ids = bus.publish_many(&batch).await.expect("publish_many");
    let expected: Vec<Option<Uuid>> =
        batch.iter().enumerate().map(|(i, m)| (![3, 4].contains(&i)).then_some(m.id)).collect();
    assert_eq!(ids, expected, "each id in order; None for a key used in the batch or before it");
    let numbers = |got: &[Delivery]| got.iter().map(|d| d.payload["n"].clone()).collect::<Vec<_>>();
    let a = claim_all(&bus, "a").await;
    assert_eq!(numbers(&a), [json!("before"), json!(0), json!(2), json!(5)]);
    let b = claim_all(&bus, "b").await;
    assert_eq!(numbers(&b), [json!("before"), json!(0), json!(1), json!(2), json!(5)]);
    assert!(bus.publish_many(&[]).await.expect("an empty batch").is_empty());
}

pub async fn a_batch_completion_or_extension_skips_stale_attempts<B: Backend>(bus: B) {
    bus.subscribe(&group("g"), &["job"]).await.expect("subscribe");
    bus.subscribe(&group("h"), &["job"]).await.expect("subscribe");
    publish(&bus, "job", 3).await;
    let stale = bus.claim("g", "slow", 1, Duration::from_millis(200)).await.expect("claim").remove(0);
    let mut current = Vec::new();
    eventually(SOON, "the slow worker's lease expires", async || {
        current.extend(bus.claim("g", "fast", 10, LEASE).await.expect("claim"));
        current.len() == 3
    })
    .await;
    let other = claim_all(&bus, "h").await;
    let mut batch = vec![stale.clone()];
    batch.extend(current.iter().cloned());
    let held = bus.extend_many(&batch, LEASE).await.expect("extend_many");
    assert_eq!(held, [false, true, true, true], "the stale attempt cannot extend");
    batch.extend(other.iter().cloned());
    let done = bus.complete_many(&batch).await.expect("complete_many");
    assert_eq!(
        done,
        [false, true, true, true, true, true, true],
        "two groups in one batch; not the stale attempt"
    );
    assert!(claim_all(&bus, "g").await.is_empty() && claim_all(&bus, "h").await.is_empty(), "all handled");
    assert!(!bus.complete_many(&current).await.expect("again").contains(&true), "completed once");
}

pub async fn a_handler_slower_than_its_lease_keeps_it_by_the_workers_heartbeat<B: Backend>(bus: B) {
    bus.subscribe(&group("g"), &["job"]).await.expect("subscribe");
    publish(&bus, "job", 1).await;
    let started = Arc::new(AtomicUsize::new(0));
    let lease = Duration::from_millis(300);
    let cfg = WorkerConfig { lease, drain: Duration::from_millis(100), ..config(group("g"), 2) };
    let worker = Worker::new(bus.clone(), Stuck(started.clone()), cfg);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));
    eventually(SOON, "the handler is running", async || started.load(Ordering::SeqCst) == 1).await;
    // Watch four leases' time: another instance never gets the delivery, the heartbeat keeps it.
    let watched = tokio::time::Instant::now();
    let mut every = tokio::time::interval(lease / 4);
    while watched.elapsed() < lease * 4 {
        every.tick().await;
        assert!(bus.claim("g", "other", 10, LEASE).await.expect("claim").is_empty(), "the lease held");
    }
    let _ = stop.send(());
    task.await.expect("task").expect("worker stops cleanly");
    let back = claim_all(&bus, "g").await;
    assert_eq!(back.len(), 1, "released at shutdown");
    assert_eq!(back[0].attempt, 1, "never taken over: the first attempt held it throughout");
}

pub async fn a_message_over_the_size_limit_is_refused_at_publish_and_nothing_is_published<B: Backend>(
    bus: B,
) {
    bus.subscribe(&group("g"), &["job"]).await.expect("subscribe");
    let big = Publish::new("job", json!({ "data": "x".repeat(bus::MAX_MESSAGE_BYTES) }));
    let refused = bus.publish(&big).await;
    assert!(matches!(refused, Err(BusError::TooLarge { .. })), "a clear error: {refused:?}");
    let message = refused.expect_err("refused").to_string();
    assert!(message.contains("job") && message.contains("publish a reference"), "{message}");
    let batch = [Publish::new("job", json!({ "n": 1 })), big];
    let refused = bus.publish_many(&batch).await;
    assert!(matches!(refused, Err(BusError::TooLarge { .. })), "{refused:?}");
    assert!(claim_all(&bus, "g").await.is_empty(), "all or nothing: the small one went nowhere either");
}

/// Fails each message's first attempt, handles the second.
struct FailsOnce(Arc<Counting>);

impl Handler for FailsOnce {
    async fn handle(&self, d: &Delivery) -> Result<Handled, HandlerError> {
        if d.attempt == 1 {
            // Long enough for the worker to be asleep when the failure is reported.
            tokio::time::sleep(Duration::from_millis(200)).await;
            return Err(HandlerError::Retry(anyhow::anyhow!("try again")));
        }
        *self.0.seen.lock().expect("lock").entry(d.id).or_default() += 1;
        Ok(Handled::Done)
    }
}

pub async fn a_sleeping_worker_runs_its_own_retry_when_it_falls_due_not_at_its_poll_interval<B: Backend>(
    bus: B,
) {
    bus.subscribe(&group("g"), &["job"]).await.expect("subscribe");
    let handled = Arc::new(Counting::default());
    let cfg = WorkerConfig { poll: Duration::from_secs(600), lease: LEASE, ..config(group("g"), 2) };
    let worker = Worker::new(bus.clone(), FailsOnce(handled.clone()), cfg);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));
    let id = publish(&bus, "job", 1).await[0];
    // The retry is due 50-100 ms after the failure (group's backoff); nothing else wakes the
    // worker: no publish follows, its poll is 600 s and its lease 30 s.
    eventually(SOON, "the retry, long before the 600 s poll", async || {
        handled.seen.lock().expect("lock").get(&id) == Some(&1)
    })
    .await;
    let _ = stop.send(());
    task.await.expect("task").expect("worker stops cleanly");
}
