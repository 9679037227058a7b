//! The development mailbox: present in dev, absent in prod, and prod's refusal of unencrypted SMTP.

use std::time::Duration;

use serde_json::Value;
use testkit::eventually;

use crate::helpers::{activation, spawn_mailer};

#[tokio::test]
async fn in_dev_an_activation_email_lands_in_the_mailbox_shown_at_dev_mail() {
    let app = spawn_mailer(&[]).await;
    let event = activation("ada@example.com");
    let id = app.publish("auth.activation_requested", event.clone()).await;
    let client = reqwest::Client::new();
    let mut mails = Value::Null;
    eventually(Duration::from_secs(10), "the email reaches the mailbox", async || {
        mails = client
            .get(format!("{}/dev/mail.json", app.address))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        mails.as_array().is_some_and(|m| !m.is_empty())
    })
    .await;
    let mail = &mails[0];
    assert_eq!(mail["recipient"], "ada@example.com");
    assert_eq!(mail["message_id"], id.to_string());
    assert!(mail["subject"].as_str().expect("subject").contains("Activate"));
    let link = event["activation_url"].as_str().expect("link");
    assert!(mail["text_body"].as_str().expect("text").contains(link));

    let page = client
        .get(format!("{}/dev/mail", app.address))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("Activate your Slipway account"), "{page}");
    let html = client
        .get(format!("{}/dev/mail/{}", app.address, mail["id"]))
        .send()
        .await
        .expect("mail")
        .text()
        .await
        .expect("html");
    assert!(
        html.replace("&#x2f;", "/").contains(&format!("href=\"{link}\"")),
        "the link is clickable: {html}"
    );
    eventually(Duration::from_secs(5), "acknowledged", async || app.unfinished().await == 0).await;
}

#[tokio::test]
async fn the_dev_mailbox_does_not_exist_in_prod() {
    let app = spawn_mailer(&[
        ("SLIPWAY_ENV", "prod"),
        ("SLIPWAY_MAILER_TRANSPORT", "smtp"),
        ("SLIPWAY_MAILER_SMTP_HOST", "127.0.0.1"),
        ("SLIPWAY_MAILER_SMTP_PORT", "1"),
    ])
    .await;
    let res = reqwest::get(format!("{}/dev/mail", app.address)).await.expect("answer");
    assert_eq!(res.status(), 404);
}

#[test]
fn prod_refuses_the_mailbox_and_unencrypted_smtp() {
    let vars = [
        ("SLIPWAY_ENV", "prod"),
        ("SLIPWAY_DATABASE_URL", "postgres://m:pw@db/slipway"),
        ("SLIPWAY_MAILER_TRANSPORT", "mailbox"),
        ("SLIPWAY_MAILER_SMTP_TLS", "none"),
    ];
    let err = mailer::Config::load(&kit::config::Sources::from_vars(vars)).expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("SLIPWAY_MAILER_TRANSPORT: the development mailbox is not for staging or prod"),
        "{text}"
    );
    assert!(text.contains("SLIPWAY_MAILER_SMTP_TLS: unencrypted SMTP is for dev and test only"), "{text}");
}
