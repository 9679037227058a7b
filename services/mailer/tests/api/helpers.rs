//! `spawn_mailer()`: the real mailer on a random port against a fresh database.

use bus::pg::PgBus;
use bus::{Backend, Publish};
use mailer::Config;
use serde_json::{Value, json};
use testkit::TestDb;
use testkit::smtp::SmtpSink;
use uuid::Uuid;

pub struct TestMailer {
    pub address: String,
    /// Kept so the database outlives the test's use of it.
    _db: TestDb,
    pub pool: sqlx::PgPool,
    pub bus: PgBus,
    /// The running service; stopped when the test drops it.
    _app: testkit::Spawned,
}

pub fn vars(db: &TestDb, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = [
        ("SLIPWAY_ENV", "test"),
        ("SLIPWAY_DATABASE_URL", db.url.as_str()),
        ("SLIPWAY_MAILER_PORT", "0"),
        ("SLIPWAY_MAILER_BACKOFF_BASE", "50ms"),
        ("SLIPWAY_MAILER_POLL", "200ms"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    vars
}

/// The settings that point the mailer at an SMTP sink.
pub fn smtp_vars(sink: &SmtpSink) -> Vec<(String, String)> {
    [
        ("SLIPWAY_MAILER_TRANSPORT", "smtp".to_string()),
        ("SLIPWAY_MAILER_SMTP_HOST", "127.0.0.1".to_string()),
        ("SLIPWAY_MAILER_SMTP_PORT", sink.port().to_string()),
        ("SLIPWAY_MAILER_SMTP_TLS", "none".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

pub async fn spawn_mailer(extra: &[(&str, &str)]) -> TestMailer {
    let db = TestDb::create().await;
    let vars = vars(&db, extra);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = testkit::spawn::<Config>(&vars).await;
    let pool = db.pool().await;
    TestMailer { address: app.url(), bus: PgBus::new(pool.clone()), pool, _db: db, _app: app }
}

pub async fn spawn_with_sink() -> (TestMailer, SmtpSink) {
    let sink = SmtpSink::start().await;
    let smtp = smtp_vars(&sink);
    let extra: Vec<(&str, &str)> = smtp.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    (spawn_mailer(&extra).await, sink)
}

/// An `auth.activation_requested` event as auth publishes it.
pub fn activation(email: &str) -> Value {
    json!({
        "user_id": Uuid::new_v4(), "email": email,
        "activation_url": format!("http://localhost:8080/activate?token={}", Uuid::new_v4().simple()),
        "expires_at": "2030-01-01T00:00:00Z",
    })
}

impl TestMailer {
    pub async fn publish(&self, topic: &str, payload: Value) -> Uuid {
        self.bus.publish(&Publish::new(topic, payload)).await.expect("publish").expect("new event")
    }

    /// Deliveries of the mailer group not yet acknowledged (pending, running or dead).
    pub async fn unfinished(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM bus.deliveries WHERE group_name = 'mailer'")
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }
}
