//! Three mailer processes, 500 events, one instance killed with SIGKILL midway: none is sent
//! twice, every one is recorded, and all arrive but those the killed instance had between its
//! record's commit and the end of the message (the gap smtp.rs documents). On either bus:
//! Postgres, and NATS JetStream with Postgres as its outbox.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bus::Publish;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use testkit::smtp::SmtpSink;
use testkit::{TestDb, eventually};

use crate::helpers::{activation, smtp_vars, vars};

const MAILER: &str = env!("CARGO_BIN_EXE_mailer");
const EVENTS: usize = 500;

fn start(db: &TestDb, sink: &SmtpSink, bus: &str) -> (Child, u16) {
    let port = testkit::free_port();
    let mut env = vars(
        db,
        &[
            ("SLIPWAY_MAILER_LEASE", "2s"),
            ("SLIPWAY_MAILER_CONCURRENCY", &CONCURRENCY.to_string()),
            ("SLIPWAY_LOG", "warn"),
            ("SLIPWAY_BUS_URL", bus),
        ],
    );
    env.retain(|(k, _)| k != "SLIPWAY_MAILER_PORT");
    env.push(("SLIPWAY_MAILER_PORT".into(), port.to_string()));
    env.extend(smtp_vars(sink));
    let child = Command::new(MAILER)
        .env_clear()
        .envs(env)
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mailer starts");
    (child, port)
}

#[tokio::test]
async fn three_instances_send_500_emails_never_twice_though_one_is_killed_midway() {
    three_instances_one_killed("postgres", None).await;
}

#[tokio::test]
async fn on_jetstream_three_instances_send_500_emails_never_twice_though_one_is_killed_midway() {
    let namespace = testkit::nats::namespace().await;
    let url = format!("{}/{namespace}", testkit::nats::url());
    three_instances_one_killed(&url, Some(&namespace)).await;
}

/// The test on the bus `bus` names; `namespace` is JetStream's, when it is JetStream.
async fn three_instances_one_killed(bus: &str, namespace: Option<&str>) {
    let db = TestDb::create().await;
    let sink = SmtpSink::start().await;
    let mut instances: Vec<(Child, u16)> = (0..3).map(|_| start(&db, &sink, bus)).collect();
    for (_, port) in &instances {
        let url = format!("http://127.0.0.1:{port}/readyz");
        eventually(Duration::from_secs(30), "a mailer instance is ready", async || {
            reqwest::get(&url).await.is_ok_and(|r| r.status() == 200)
        })
        .await;
    }
    let pool = db.pool().await;
    let mut tx = pool.begin().await.expect("begin");
    for i in 0..EVENTS {
        let event = Publish::new("auth.activation_requested", activation(&format!("user{i}@example.com")));
        bus::pg::publish(&mut tx, &event).await.expect("publish");
    }
    tx.commit().await.expect("commit");

    eventually(Duration::from_secs(60), "a third of the emails are out", async || {
        sink.received().len() >= EVENTS / 3
    })
    .await;
    let (victim, _) = &mut instances[0];
    kill(Pid::from_raw(i32::try_from(victim.id()).expect("pid")), Signal::SIGKILL).expect("SIGKILL");
    let _ = victim.wait();

    // Postgres: no delivery left, the relay's included; JetStream: nor any message a consumer
    // has yet to deliver or to see acknowledged.
    let unfinished = async || -> u64 {
        let rows: i64 =
            sqlx::query_scalar("SELECT count(*) FROM bus.deliveries").fetch_one(&pool).await.expect("count");
        let on_nats = match namespace {
            Some(namespace) => {
                let (unsettled, stored) = testkit::nats::unsettled(namespace).await;
                // Every event went through JetStream (the relay's retries de-duplicated).
                if stored < EVENTS as u64 { unsettled + 1 } else { unsettled }
            }
            None => 0,
        };
        u64::try_from(rows).expect("a count") + on_nats
    };
    eventually(Duration::from_secs(90), "every event acknowledged", async || unfinished().await == 0).await;
    for (child, _) in &mut instances[1..] {
        let _ = kill(Pid::from_raw(i32::try_from(child.id()).expect("pid")), Signal::SIGTERM);
        let _ = child.wait();
    }

    let received = sink.received();
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for mail in &received {
        *per_id.entry(mail.header("Message-ID").expect("Message-ID")).or_default() += 1;
    }
    let twice: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(received.len(), per_id.len());
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM mailer.sent").fetch_one(&pool).await.expect("count");
    assert_eq!(recorded, EVENTS as i64, "every event recorded as sent: none dropped");
    // The one gap the design accepts (mailer's smtp.rs): a send whose record was committed
    // but whose final `.` the killed instance never wrote. The server discarded that copy,
    // and the redelivery finds the record, so the email is lost rather than doubled. At most
    // one per send the victim had in flight (its concurrency, 4) can be caught there; every
    // other email arrives.
    let missing = EVENTS - per_id.len();
    assert!(missing <= CONCURRENCY, "{missing} emails never arrived");
    if missing > 0 {
        eprintln!(
            "mailer scale: {missing} email(s) lost in the commit-to-end-of-DATA window of the killed instance"
        );
    }
}

/// Sends each instance has in flight at once (`SLIPWAY_MAILER_CONCURRENCY`).
const CONCURRENCY: usize = 4;
