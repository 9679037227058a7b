//! `slipway bus dead`: listing, retrying and discarding dead letters on a real bus.

use bus::{Backend, Group, Publish};
use serde_json::json;
use testkit::TestDb;

use crate::helpers::{run, text};

#[tokio::test]
async fn bus_dead_lists_retries_and_discards_dead_letters() {
    let db = TestDb::create().await;
    bus::migrations().up(&db.db_config()).await.expect("migrate");
    let pg = bus::pg::PgBus::new(db.pool().await);
    pg.subscribe(&Group::new("mailer"), &["auth.activation_requested"]).await.expect("subscribe");
    let first = pg
        .publish(&Publish::new("auth.activation_requested", json!({})))
        .await
        .expect("publish")
        .expect("id");
    let second = pg
        .publish(&Publish::new("auth.activation_requested", json!({})))
        .await
        .expect("publish")
        .expect("id");
    for d in pg.claim("mailer", "t", 10, std::time::Duration::from_secs(30)).await.expect("claim") {
        pg.fail(&d, "550 5.1.1 no such user", true).await.expect("fail");
    }
    let vars = [("SLIPWAY_ENV", "dev"), ("DATABASE_URL", db.url.as_str())];

    let list = text(&run(&vars, &["bus", "dead", "list"]));
    assert!(list.contains(&first.to_string()) && list.contains("550 5.1.1 no such user"), "{list}");
    assert!(list.contains("2 dead letter(s)"), "{list}");

    let retried = run(&vars, &["bus", "dead", "retry", "mailer", &first.to_string()]);
    assert!(retried.status.success(), "{}", text(&retried));
    let again = pg.claim("mailer", "t", 10, std::time::Duration::from_secs(30)).await.expect("claim");
    assert_eq!(again.iter().map(|d| d.id).collect::<Vec<_>>(), vec![first]);

    assert!(run(&vars, &["bus", "dead", "discard", "mailer", &second.to_string()]).status.success());
    assert!(text(&run(&vars, &["bus", "dead", "list", "--group", "mailer"])).contains("0 dead letter(s)"));
    let missing = run(&vars, &["bus", "dead", "retry", "mailer", &second.to_string()]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing).contains("has no dead letter"), "{}", text(&missing));
}

#[tokio::test]
async fn bus_dead_works_on_nats_jetstream_too_and_an_unknown_bus_is_refused_with_what_to_write() {
    let server = testkit::nats::url();
    let namespace = testkit::nats::namespace().await;
    let js = bus::nats::JsBus::connect(&server, &namespace).await.expect("NATS with JetStream at NATS_URL");
    js.subscribe(&Group::new("mailer"), &["auth.activation_requested"]).await.expect("subscribe");
    let id = js
        .publish(&Publish::new("auth.activation_requested", json!({})))
        .await
        .expect("publish")
        .expect("id");
    for d in js.claim("mailer", "t", 10, std::time::Duration::from_secs(30)).await.expect("claim") {
        js.fail(&d, "550 5.1.1 no such user", true).await.expect("fail");
    }
    let url = format!("{server}/{namespace}");
    let vars = [("SLIPWAY_ENV", "dev"), ("SLIPWAY_BUS_URL", url.as_str())];

    let list = text(&run(&vars, &["bus", "dead", "list"]));
    assert!(list.contains(&id.to_string()) && list.contains("550 5.1.1 no such user"), "{list}");
    assert!(list.contains("1 dead letter(s)"), "{list}");
    let retried = run(&vars, &["bus", "dead", "retry", "mailer", &id.to_string()]);
    assert!(retried.status.success(), "{}", text(&retried));
    let again = js.claim("mailer", "t", 10, std::time::Duration::from_secs(30)).await.expect("claim");
    assert_eq!((again.len(), again[0].id, again[0].attempt), (1, id, 1), "queued again with fresh attempts");

    let unknown = run(&[("SLIPWAY_ENV", "dev")], &["bus", "dead", "list", "--bus", "kafka://broker:9092"]);
    assert_eq!(unknown.status.code(), Some(3), "{}", text(&unknown));
    assert!(text(&unknown).contains("nats://host:4222"), "{}", text(&unknown));
}
