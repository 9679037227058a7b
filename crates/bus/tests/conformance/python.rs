//! A service in another language: the Python example, with only psycopg, publishes to and
//! consumes from the same bus as Rust.

use std::process::Command;
use std::time::Duration;

use bus::{Backend, Group, Publish};
use serde_json::{Value, json};
use testkit::TestDb;

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python_client.py");

fn python(args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg(CLIENT)
        .args(args)
        .output()
        .expect("python3 runs (install psycopg: pip install 'psycopg[binary]')");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8")
}

#[tokio::test]
async fn a_python_service_consumes_what_rust_publishes_and_rust_consumes_what_python_publishes() {
    let db = TestDb::create().await;
    bus::migrations().up(&db.db_config()).await.expect("migrations");
    let bus = bus::pg::PgBus::new(db.pool().await);

    bus.subscribe(&Group::new("python-service"), &["orders.placed"]).await.expect("subscribe");
    for n in 0..3 {
        bus.publish(&Publish::new("orders.placed", json!({ "order": n }))).await.expect("publish");
    }
    let url = db.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        python(&["consume", &url, "python-service", "orders.placed", "3"])
    })
    .await
    .expect("join");
    let handled: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(
        handled.iter().map(|h| h["payload"]["order"].clone()).collect::<Vec<_>>(),
        vec![json!(0), json!(1), json!(2)]
    );
    assert!(
        bus.claim("python-service", "rust", 10, Duration::from_secs(5)).await.expect("claim").is_empty(),
        "all acknowledged"
    );

    bus.subscribe(&Group::new("rust-service"), &["invoices.paid"]).await.expect("subscribe");
    let url = db.url.clone();
    let id =
        tokio::task::spawn_blocking(move || python(&["publish", &url, "invoices.paid", r#"{"invoice": 7}"#]))
            .await
            .expect("join");
    let got = bus.claim("rust-service", "rust", 10, Duration::from_secs(5)).await.expect("claim");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id.to_string(), id.trim());
    assert_eq!(got[0].payload["invoice"], 7);
}
