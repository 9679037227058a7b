//! Postgres-only: publishing inside the caller's transaction (the transactional outbox), and
//! acknowledging inside the handler's.

use bus::{Backend, Group, Publish};
use serde_json::json;

#[tokio::test]
async fn a_rolled_back_transaction_publishes_nothing_and_a_committed_one_publishes_once() {
    let bus = crate::pg().await;
    bus.subscribe(&Group::new("g"), &["job"]).await.expect("subscribe");
    let mut tx = bus.pool().begin().await.expect("begin");
    bus::pg::publish(&mut tx, &Publish::new("job", json!({ "v": "rolled back" }))).await.expect("publish");
    tx.rollback().await.expect("rollback");
    let mut tx = bus.pool().begin().await.expect("begin");
    bus::pg::publish(&mut tx, &Publish::new("job", json!({ "v": "committed" }))).await.expect("publish");
    tx.commit().await.expect("commit");
    let got = bus.claim("g", "t", 10, std::time::Duration::from_secs(5)).await.expect("claim");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload["v"], "committed");
}

#[tokio::test]
async fn an_acknowledgement_in_the_handlers_transaction_commits_or_rolls_back_with_its_writes() {
    let bus = crate::pg().await;
    sqlx::query("CREATE TABLE public.effects (message_id uuid PRIMARY KEY)")
        .execute(bus.pool())
        .await
        .expect("table");
    bus.subscribe(&Group::new("g"), &["job"]).await.expect("subscribe");
    bus.publish(&Publish::new("job", json!({}))).await.expect("publish");
    let lease = std::time::Duration::from_millis(200);
    let d = bus.claim("g", "t", 1, lease).await.expect("claim").remove(0);

    let mut tx = bus.pool().begin().await.expect("begin");
    sqlx::query("INSERT INTO public.effects VALUES ($1)").bind(d.id).execute(&mut *tx).await.expect("effect");
    assert!(bus::pg::complete_in(&mut tx, &d).await.expect("ack"));
    tx.rollback().await.expect("rollback: the handler failed after all");
    let mut again = Vec::new();
    testkit::eventually(std::time::Duration::from_secs(10), "redelivered", async || {
        again = bus.claim("g", "t", 1, lease).await.expect("claim");
        !again.is_empty()
    })
    .await;

    let mut tx = bus.pool().begin().await.expect("begin");
    sqlx::query("INSERT INTO public.effects VALUES ($1)")
        .bind(again[0].id)
        .execute(&mut *tx)
        .await
        .expect("effect");
    assert!(bus::pg::complete_in(&mut tx, &again[0]).await.expect("ack"));
    tx.commit().await.expect("commit");
    let effects: i64 =
        sqlx::query_scalar("SELECT count(*) FROM public.effects").fetch_one(bus.pool()).await.expect("count");
    assert_eq!(effects, 1);
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM bus.deliveries").fetch_one(bus.pool()).await.expect("count");
    assert_eq!(left, 0, "acknowledged and cleaned up");
    let messages: i64 =
        sqlx::query_scalar("SELECT count(*) FROM bus.events").fetch_one(bus.pool()).await.expect("count");
    assert_eq!(messages, 0, "a handled event leaves the hot tables");
}

#[tokio::test]
async fn a_batch_published_in_a_rolled_back_transaction_leaves_nothing_and_a_committed_one_all() {
    let bus = crate::pg().await;
    bus.subscribe(&Group::new("g"), &["job"]).await.expect("subscribe");
    let batch: Vec<Publish> = (0..3).map(|n| Publish::new("job", json!({ "n": n }))).collect();
    let mut tx = bus.pool().begin().await.expect("begin");
    bus::pg::publish_many(&mut tx, &batch).await.expect("publish_many");
    tx.rollback().await.expect("rollback");
    assert!(bus.claim("g", "t", 10, std::time::Duration::from_secs(5)).await.expect("claim").is_empty());
    let mut tx = bus.pool().begin().await.expect("begin");
    bus::pg::publish_many(&mut tx, &batch).await.expect("publish_many");
    tx.commit().await.expect("commit");
    let got = bus.claim("g", "t", 10, std::time::Duration::from_secs(5)).await.expect("claim");
    assert_eq!(got.iter().map(|d| d.id).collect::<Vec<_>>(), batch.iter().map(|m| m.id).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_database_refuses_an_oversized_message_from_a_publisher_in_any_language() {
    let bus = crate::pg().await;
    // As a Python service publishes: bus.publish over SQL, no Rust check in front.
    let big = json!({ "data": "x".repeat(bus::MAX_MESSAGE_BYTES) });
    let error = sqlx::query("SELECT bus.publish('job', $1)")
        .bind(&big)
        .execute(bus.pool())
        .await
        .expect_err("refused by the database");
    let db = error.as_database_error().expect("a database error");
    assert_eq!(db.constraint(), Some("messages_size"), "{db}");
    let fits = json!({ "data": "x".repeat(bus::MAX_MESSAGE_BYTES - 100) });
    sqlx::query("SELECT bus.publish('job', $1)").bind(&fits).execute(bus.pool()).await.expect("just under");
}
