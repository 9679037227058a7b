//! `spawn_app()`: the real auth application on a random port against a fresh database.

use auth::{Application, Config};
use kit::config::Sources;
use testkit::TestDb;
use tokio::sync::oneshot;

#[allow(dead_code)]
pub struct TestApp {
    pub address: String,
    pub db: TestDb,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
}

/// The variables a test configuration starts from: test environment, its database, port 0.
pub fn test_vars(db: &TestDb) -> Vec<(String, String)> {
    [("SLIPWAY_ENV", "test"), ("SLIPWAY_DATABASE_URL", db.url.as_str()), ("SLIPWAY_AUTH_PORT", "0")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn test_config(db: &TestDb) -> Config {
    Config::load(&Sources::from_vars(test_vars(db))).expect("valid test configuration")
}

pub async fn spawn_app() -> TestApp {
    let db = TestDb::create().await;
    spawn_app_on(db).await
}

pub async fn spawn_app_on(db: TestDb) -> TestApp {
    let app = Application::build(test_config(&db)).await.expect("auth builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp { address, db, client: reqwest::Client::new(), stop: Some(stop) }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.address)).send().await.expect("auth answers")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
