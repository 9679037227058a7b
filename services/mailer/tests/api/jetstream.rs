//! The mailer on NATS JetStream (`SLIPWAY_BUS_URL=nats://…`): events published to its
//! database's outbox reach it through the relay, its readiness reports NATS, and an
//! unreachable NATS stops it at start with where it looked.

use std::time::Duration;

use kit::config::Sources;
use serde_json::Value;
use testkit::eventually;

use crate::helpers::{activation, spawn_mailer};

async fn mailbox(client: &reqwest::Client, address: &str) -> Vec<Value> {
    let mails: Value =
        client.get(format!("{address}/dev/mail.json")).send().await.expect("get").json().await.expect("json");
    mails.as_array().cloned().unwrap_or_default()
}

async fn readyz(client: &reqwest::Client, address: &str) -> (u16, Value) {
    let res = client.get(format!("{address}/readyz")).send().await.expect("readyz");
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn on_jetstream_each_email_reaches_the_mailbox_once_and_readiness_reports_nats_down_and_back() {
    let mut nats = testkit::nats::Server::start().expect("a throwaway nats-server");
    let bus = format!("{}/mailer_test", nats.url());
    let app = spawn_mailer(&[("SLIPWAY_BUS_URL", &bus)]).await;
    let client = reqwest::Client::new();
    let id = app.publish("auth.activation_requested", activation("ada@example.com")).await;
    let mut mails = Vec::new();
    eventually(Duration::from_secs(20), "the email in the mailbox, through JetStream", async || {
        mails = mailbox(&client, &app.address).await;
        !mails.is_empty()
    })
    .await;
    assert_eq!(mails[0]["message_id"], id.to_string());
    let handled: i64 = sqlx::query_scalar("SELECT count(*) FROM bus.handled WHERE group_name = 'mailer'")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(handled, 1, "completed in the mailbox's transaction, recorded for redeliveries");
    assert_eq!(readyz(&client, &app.address).await.0, 200);

    nats.kill();
    let mut answer = (0, Value::Null);
    eventually(Duration::from_secs(20), "readiness to report NATS down", async || {
        answer = readyz(&client, &app.address).await;
        answer.0 == 503
    })
    .await;
    assert_eq!(answer.1["checks"]["nats"], "down", "{}", answer.1);
    assert!(answer.1["checks"].get("postgres").is_none(), "only NATS is down: {}", answer.1);
    // Published while NATS is down: kept in the outbox, relayed once it is back.
    let later = app.publish("auth.activation_requested", activation("bob@example.com")).await;
    nats.restart().expect("nats-server again");
    eventually(Duration::from_secs(30), "ready again, and the email kept meanwhile delivered", async || {
        mails = mailbox(&client, &app.address).await;
        readyz(&client, &app.address).await.0 == 200 && mails.len() == 2
    })
    .await;
    assert!(mails.iter().any(|m| m["message_id"] == later.to_string()), "{mails:?}");
}

#[tokio::test]
async fn a_mailer_whose_nats_is_unreachable_refuses_to_start_saying_where_it_looked() {
    let db = testkit::TestDb::create().await;
    let nowhere = format!("nats://127.0.0.1:{}", testkit::free_port());
    let vars = crate::helpers::vars(&db, &[("SLIPWAY_BUS_URL", &nowhere)]);
    let config = mailer::Config::load(&Sources::from_vars(vars)).expect("a valid configuration");
    let error = mailer::Application::build(config).await.expect_err("no NATS there");
    let said = format!("{error:#}");
    assert!(said.contains("connecting to the bus") && said.contains(&nowhere), "{said}");
}

#[test]
fn an_unknown_bus_url_is_a_configuration_error_that_says_what_to_write() {
    let vars = vec![
        ("SLIPWAY_ENV".to_string(), "test".to_string()),
        ("SLIPWAY_BUS_URL".to_string(), "kafka://broker:9092".to_string()),
    ];
    let errors = mailer::Config::load(&Sources::from_vars(vars)).expect_err("refused");
    let said = errors.to_string();
    assert!(said.contains("SLIPWAY_MAILER_BUS_URL") || said.contains("SLIPWAY_BUS_URL"), "{said}");
    assert!(said.contains("nats://host:4222"), "{said}");
}
