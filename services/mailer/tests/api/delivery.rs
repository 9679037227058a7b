//! Delivery over SMTP: one email per event, and dead letters with the server's reason.

use std::time::Duration;

use bus::Backend;
use serde_json::json;
use testkit::eventually;

use crate::helpers::{activation, spawn_with_sink};

const SOON: Duration = Duration::from_secs(15);

#[tokio::test]
async fn an_event_becomes_one_multipart_email_whose_message_id_is_the_event_id() {
    let (app, sink) = spawn_with_sink().await;
    let event = activation("ada@example.com");
    let id = app.publish("auth.activation_requested", event.clone()).await;
    eventually(SOON, "the sink received it", async || sink.received().len() == 1).await;
    let mail = &sink.received()[0];
    assert_eq!(mail.to, vec!["ada@example.com".to_string()]);
    assert_eq!(mail.from, "no-reply@localhost");
    assert_eq!(mail.header("Message-ID"), Some(format!("<{id}@localhost>")));
    assert!(mail.header("Subject").is_some_and(|s| s.contains("Activate")));
    assert!(
        mail.header("Content-Type").is_some_and(|c| c.starts_with("multipart/alternative")),
        "{:?}",
        mail.header("Content-Type")
    );
    assert!(mail.data.contains("text/plain") && mail.data.contains("text/html"));
    let sent: i64 =
        sqlx::query_scalar("SELECT count(*) FROM mailer.sent WHERE message_id = $1 AND transport = 'smtp'")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .expect("sent");
    assert_eq!(sent, 1);
    eventually(SOON, "acknowledged", async || app.unfinished().await == 0).await;
}

#[tokio::test]
async fn a_5xx_for_the_recipient_is_dead_lettered_with_the_servers_reason() {
    let (app, sink) = spawn_with_sink().await;
    let id = app.publish("auth.activation_requested", activation("reject-me@example.com")).await;
    let mut dead = Vec::new();
    eventually(SOON, "dead-lettered", async || {
        dead = app.bus.dead_letters("mailer").await.expect("dead letters");
        !dead.is_empty()
    })
    .await;
    assert_eq!(dead[0].message_id, id);
    assert_eq!(dead[0].attempt, 1, "permanent: not retried");
    let reason = dead[0].last_error.clone().unwrap_or_default();
    assert!(reason.contains("550") && reason.contains("no such user"), "{reason}");
    assert!(sink.received().is_empty());
    let sent: i64 =
        sqlx::query_scalar("SELECT count(*) FROM mailer.sent").fetch_one(&app.pool).await.expect("count");
    assert_eq!(sent, 0);
}

#[tokio::test]
async fn a_4xx_is_retried_and_then_delivered_once() {
    let (app, sink) = spawn_with_sink().await;
    app.publish(
        "auth.password_reset_requested",
        json!({
            "user_id": uuid::Uuid::new_v4(), "email": "tempfail@example.com",
            "reset_url": "http://localhost:8080/reset-password?token=x", "expires_at": "2030-01-01T00:00:00Z",
        }),
    )
    .await;
    eventually(SOON, "delivered on the retry", async || sink.received().len() == 1).await;
    eventually(SOON, "acknowledged", async || app.unfinished().await == 0).await;
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn a_redelivery_of_an_event_already_sent_sends_nothing() {
    let (app, sink) = spawn_with_sink().await;
    // As if an earlier attempt had sent the email and died before acknowledging it.
    let event = bus::Publish::new("auth.activation_requested", activation("ada@example.com"));
    sqlx::query("INSERT INTO mailer.sent (message_id, topic, recipient, transport) VALUES ($1, $2, 'ada@example.com', 'smtp')")
        .bind(event.id)
        .bind(&event.topic)
        .execute(&app.pool)
        .await
        .expect("record");
    app.bus.publish(&event).await.expect("publish");
    eventually(SOON, "the redelivery is acknowledged", async || app.unfinished().await == 0).await;
    assert!(sink.received().is_empty(), "no second email");
}

#[tokio::test]
async fn an_event_the_mailer_cannot_render_is_dead_lettered_at_once() {
    let (app, sink) = spawn_with_sink().await;
    // An event as auth types it (the `events` crate), but without its link.
    let no_link = json!({ "user_id": uuid::Uuid::new_v4(), "email": "ada@example.com" });
    app.publish("auth.activation_requested", no_link).await;
    let mut dead = Vec::new();
    eventually(SOON, "dead-lettered", async || {
        dead = app.bus.dead_letters("mailer").await.expect("dead");
        !dead.is_empty()
    })
    .await;
    assert!(
        dead[0].last_error.as_deref().is_some_and(|e| e.contains("activation_url")),
        "{:?}",
        dead[0].last_error
    );
    assert!(sink.received().is_empty());
}
