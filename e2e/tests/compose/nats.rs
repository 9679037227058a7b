//! The stack with its bus on NATS JetStream (docker-compose.nats.yml): an account activated
//! by the emailed link, the email's event carried from auth's outbox through the relay and
//! JetStream to the mailer; while NATS is down the event waits in the outbox and the services
//! say they are not ready, and it arrives once NATS is back.

use std::time::Duration;

use testkit::eventually;
use tokio::process::Command;

use crate::helpers::{Mode, Stack, token_in, workspace};

/// slipway/nats:2.9, built from this tree's docker/nats.
async fn nats_image() {
    let built = Command::new("docker")
        .args(["build", "-q", "-t", "slipway/nats:2.9"])
        .arg(workspace().join("docker/nats"))
        .output()
        .await
        .expect("docker build");
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
}

async fn relay_backlog(stack: &Stack) -> i64 {
    let n = stack.sql("SELECT count(*) FROM bus.deliveries WHERE group_name = 'nats-relay'").await;
    n.parse().expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_nats_jetstream_an_account_is_activated_by_its_email_and_an_outage_of_nats_loses_nothing() {
    let stack = Stack::prepare(Mode::Nats).await;
    nats_image().await;
    stack.up(&[]).await;
    for service in ["auth", "mailer"] {
        let logs = stack.compose(&["logs", "--no-color", service]).await;
        assert!(logs.contains("nats://nats:4222/bus"), "{service} on JetStream: {logs}");
    }

    let email = "on-nats@example.com";
    stack.signup(email).await;
    let token = stack.activation_token(email).await;
    let res = stack.post("/api/auth/activation", serde_json::json!({ "token": token })).await;
    assert_eq!(res.status(), 200, "activation");
    assert_eq!(stack.login(email).await.0, 200, "login after activation");

    // NATS stopped: a signup's email waits in the outbox (the relay retries it), and the
    // services report NATS in their readiness, so Docker calls them unhealthy.
    stack.compose(&["stop", "nats"]).await;
    let later = "while-nats-was-down@example.com";
    stack.signup(later).await;
    eventually(Duration::from_secs(30), "the event held in the outbox", async || {
        relay_backlog(&stack).await > 0
    })
    .await;
    let mailer = stack.containers("mailer").await.remove(0);
    eventually(Duration::from_secs(30), "the mailer's health check to fail on NATS", async || {
        let out = Command::new("docker")
            .args(["exec", &mailer, "mailer", "healthcheck"])
            .output()
            .await
            .expect("docker exec");
        !out.status.success()
    })
    .await;
    stack.compose(&["start", "nats"]).await;
    let token = token_in(&{
        eventually(Duration::from_secs(60), "the held email, once NATS is back", async || {
            !stack.mails_to(later).is_empty()
        })
        .await;
        stack.mails_to(later)[0].data.clone()
    });
    assert!(token.is_some(), "an activation link in the email sent after the outage");
    eventually(Duration::from_secs(30), "the outbox drained", async || relay_backlog(&stack).await == 0)
        .await;
    assert_eq!(stack.mails_to(email).len(), 1, "the first email once, not again after the restart");
    assert_eq!(stack.mails_to(later).len(), 1, "the held email once");
}
