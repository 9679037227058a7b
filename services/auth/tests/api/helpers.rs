//! `spawn_app()`: the real auth application on a random port against a fresh database, and
//! typed helpers for its flows.

use auth::Config;
use kit::config::Sources;
use reqwest::Response;
use serde_json::{Value, json};
use testkit::TestDb;

pub struct TestApp {
    pub address: String,
    pub config: Config,
    pub db: TestDb,
    pub pool: sqlx::PgPool,
    pub client: reqwest::Client,
    /// The running service; stopped when the test drops it.
    _app: testkit::Spawned,
}

/// An activated account and its password.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub email: String,
    pub password: String,
}

/// The variables a test configuration starts from: test environment, its database, port 0.
pub fn test_vars(db: &TestDb) -> Vec<(String, String)> {
    [("SLIPWAY_ENV", "test"), ("SLIPWAY_DATABASE_URL", db.url.as_str()), ("SLIPWAY_AUTH_PORT", "0")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn test_config(db: &TestDb, extra: &[(&str, &str)]) -> Config {
    let mut vars = test_vars(db);
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::load(&Sources::from_vars(vars)).expect("valid test configuration")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    spawn_app_on(TestDb::create().await, extra).await
}

pub async fn spawn_app_on(db: TestDb, extra: &[(&str, &str)]) -> TestApp {
    let config = test_config(&db, extra);
    let mut vars: Vec<(&str, &str)> = vec![("SLIPWAY_DATABASE_URL", &db.url)];
    vars.extend_from_slice(extra);
    let app = testkit::spawn::<Config>(&vars).await;
    let pool = db.pool().await;
    TestApp { address: app.url(), config, db, pool, client: reqwest::Client::new(), _app: app }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Runs one retention sweep now, as the hourly janitor would.
    pub async fn sweep(&self) -> auth::janitor::Swept {
        let pool = kit::db::pool(&self.config.db, auth::SCHEMA).expect("pool");
        auth::janitor::sweep(&pool, &self.config).await.expect("sweep")
    }

    /// A POST that says it was forwarded for `client` (the test app trusts 127.0.0.1 when
    /// started with `SLIPWAY_TRUSTED_PROXIES=127.0.0.1`).
    pub async fn post_from(&self, client: &str, path: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .header("x-forwarded-for", client)
            .json(&body)
            .send()
            .await
            .expect("auth answers")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("auth answers")
    }

    pub async fn get_auth(&self, path: &str, access_token: &str) -> Response {
        self.client.get(self.url(path)).bearer_auth(access_token).send().await.expect("auth answers")
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.client.post(self.url(path)).json(&body).send().await.expect("auth answers")
    }

    pub async fn post_auth(&self, path: &str, access_token: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(access_token)
            .json(&body)
            .send()
            .await
            .expect("auth answers")
    }

    pub async fn signup(&self, email: &str, password: &str) -> Response {
        self.post("/signup", json!({ "email": email, "password": password })).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post("/login", json!({ "email": email, "password": password })).await
    }

    /// The events auth published on the bus on a topic, oldest first.
    pub async fn events(&self, topic: &str) -> Vec<Value> {
        sqlx::query_scalar("SELECT payload FROM bus.events WHERE topic = $1 ORDER BY published_at, id")
            .bind(topic)
            .fetch_all(&self.pool)
            .await
            .expect("bus messages")
    }

    /// Waits until auth's deferred work (reset and resend requests) is done.
    pub async fn settled(&self) {
        testkit::eventually(
            std::time::Duration::from_secs(15),
            "auth's queued requests are handled",
            async || {
                let left: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM bus.deliveries WHERE group_name = 'auth'")
                        .fetch_one(&self.pool)
                        .await
                        .expect("deliveries");
                left == 0
            },
        )
        .await;
    }

    /// The token in the newest emailed link of a topic for an address.
    pub async fn emailed_token(&self, topic: &str, url_field: &str, email: &str) -> String {
        self.settled().await;
        let events = self.events(topic).await;
        let event = events
            .iter()
            .rev()
            .find(|e| e["email"] == email)
            .unwrap_or_else(|| panic!("no {topic} for {email}"));
        let url = event[url_field].as_str().expect("url");
        url.split("token=").nth(1).expect("token in link").to_string()
    }

    pub async fn activation_token(&self, email: &str) -> String {
        self.emailed_token("auth.activation_requested", "activation_url", email).await
    }

    /// Signs up and activates a fresh account.
    pub async fn active_user(&self) -> TestUser {
        let user = TestUser {
            email: format!("user-{}@example.com", uuid::Uuid::new_v4().simple()),
            password: "correct horse battery staple".into(),
        };
        assert_eq!(self.signup(&user.email, &user.password).await.status(), 202);
        let token = self.activation_token(&user.email).await;
        assert_eq!(self.post("/activation", json!({ "token": token })).await.status(), 200);
        user
    }

    /// Logs in and returns the token response.
    pub async fn tokens(&self, user: &TestUser) -> Value {
        let res = self.login(&user.email, &user.password).await;
        assert_eq!(res.status(), 200, "login");
        res.json().await.expect("tokens")
    }

    pub async fn audit(&self, event: &str) -> Vec<(String, Option<String>, Option<String>)> {
        sqlx::query_as(
            "SELECT outcome, host(ip), user_agent FROM auth.audit_events WHERE event = $1 ORDER BY id",
        )
        .bind(event)
        .fetch_all(&self.pool)
        .await
        .expect("audit")
    }
}

/// A response's status and body, for comparing two answers byte for byte.
pub async fn status_and_body(res: Response) -> (u16, String) {
    let status = res.status().as_u16();
    (status, res.text().await.expect("body"))
}

/// The status and body of a problem answer, without its `request_id` (each request's own, as
/// in its `X-Request-Id` header), which it must carry: what two answers must share to be alike.
pub async fn status_and_problem(res: Response) -> (u16, String) {
    let (status, body) = status_and_body(res).await;
    let mut problem: Value = serde_json::from_str(&body).expect("a problem body");
    let id = problem.as_object_mut().and_then(|p| p.remove("request_id"));
    assert!(id.is_some_and(|id| id.is_string()), "the problem carries its request id: {body}");
    (status, problem.to_string())
}

/// The problem `type` slug of a response.
pub async fn problem_slug(res: Response) -> (u16, String) {
    let status = res.status().as_u16();
    assert_eq!(res.headers()["content-type"], "application/problem+json", "status {status}");
    let body: Value = res.json().await.expect("problem json");
    let slug = body["type"].as_str().expect("type").rsplit('/').next().expect("slug").to_string();
    (status, slug)
}
