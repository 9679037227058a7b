//! `slipway dev`: every service in one process, its configuration and its shutdown.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use testkit::{TestDb, eventually};

use crate::helpers::{free_port, slipway};

/// Free ports for every listener of the stack.
struct Ports {
    auth: String,
    mailer: String,
    web: String,
    gateway: String,
    admin: String,
}

impl Ports {
    fn new() -> Self {
        let p = || free_port().to_string();
        Self { auth: p(), mailer: p(), web: p(), gateway: p(), admin: p() }
    }

    fn vars(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("SLIPWAY_AUTH_PORT", &self.auth),
            ("SLIPWAY_MAILER_PORT", &self.mailer),
            ("SLIPWAY_WEB_PORT", &self.web),
            ("SLIPWAY_GATEWAY_PORT", &self.gateway),
            ("SLIPWAY_GATEWAY_ADMIN_PORT", &self.admin),
            ("NO_COLOR", "1"),
        ]
    }
}

async fn ready(port: &str) -> bool {
    reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await.is_ok_and(|r| r.status() == 200)
}

/// Starts `slipway dev`, waits for auth to be ready, presses Ctrl-C, returns the exit code and output.
async fn dev_session(vars: &[(&str, &str)], port: &str) -> (Option<i32>, String) {
    let child = slipway(vars).arg("dev").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn");
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    eventually(Duration::from_secs(60), "auth is ready under slipway dev", async || ready(port).await).await;
    kill(pid, Signal::SIGINT).expect("Ctrl-C");
    let out =
        tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("join").expect("wait");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `slipway dev` on a test database, serving through its gateway.
struct DevStack {
    child: std::process::Child,
    front: String,
    db: TestDb,
    /// The log goes to a file: a pipe read only at the end could fill and block the stack.
    log: std::path::PathBuf,
}

impl DevStack {
    async fn start() -> Self {
        let db = TestDb::create().await;
        let ports = Ports::new();
        let mut vars = ports.vars();
        vars.push(("DATABASE_URL", db.url.as_str()));
        let log = std::env::temp_dir().join(format!("slipway-dev-{}.log", uuid_like()));
        let file = std::fs::File::create(&log).expect("log file");
        let child = slipway(&vars).arg("dev").stdout(Stdio::null()).stderr(file).spawn().expect("spawn");
        let front = format!("http://127.0.0.1:{}", ports.gateway);
        let answers =
            async |path: &str| reqwest::get(format!("{front}{path}")).await.is_ok_and(|r| r.status() == 200);
        eventually(Duration::from_secs(60), "web and auth answer through the gateway", async || {
            answers("/login").await && answers("/api/auth/readyz").await
        })
        .await;
        Self { child, front, db, log }
    }

    /// Presses Ctrl-C and returns the exit code and the log.
    async fn stop(self) -> (Option<i32>, String) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        kill(pid, Signal::SIGINT).expect("Ctrl-C");
        let mut child = self.child;
        let status = tokio::task::spawn_blocking(move || child.wait()).await.expect("join").expect("wait");
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let _ = std::fs::remove_file(&self.log);
        (status.code(), log)
    }
}

/// A name no other test run uses.
fn uuid_like() -> String {
    format!("{}-{:?}", std::process::id(), std::time::SystemTime::now())
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

#[tokio::test]
async fn slipway_dev_puts_the_gateway_in_front_of_web_and_auth() {
    let dev = DevStack::start().await;
    let jwks = reqwest::get(format!("{}/api/auth/.well-known/jwks.json", dev.front)).await.expect("jwks");
    assert_eq!(jwks.status(), 200, "auth is routed under /api/auth");
    let keys: serde_json::Value = jwks.json().await.expect("a JWK set");
    assert!(keys["keys"][0]["kid"].is_string(), "{keys}");
    let (code, log) = dev.stop().await;
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test]
async fn slipway_dev_runs_the_services_against_database_url_and_stops_cleanly_on_ctrl_c() {
    let db = TestDb::create().await;
    let ports = Ports::new();
    let mut vars = ports.vars();
    vars.push(("DATABASE_URL", db.url.as_str()));
    let (code, log) = dev_session(&vars, &ports.auth).await;
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("drained, stopped"), "{log}");
    assert!(!log.contains("throwaway"), "{log}");
}

#[tokio::test]
async fn slipway_dev_without_a_database_starts_and_removes_a_throwaway_postgres() {
    let ports = Ports::new();
    let (code, log) = dev_session(&ports.vars(), &ports.auth).await;
    assert_eq!(code, Some(0), "{log}");
    let url = log
        .lines()
        .find_map(|l| l.split("Postgres at ").nth(1))
        .expect("announces its Postgres")
        .trim()
        .to_string();
    let gone = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await;
    assert!(gone.is_err(), "the throwaway Postgres is stopped after Ctrl-C");
}

/// A visitor of the site from its own loopback address: keeps its cookies, signs up through
/// the gateway with the form's CSRF token, and says where it was sent.
async fn sign_up_from(front: &str, address: std::net::IpAddr, email: &str) -> String {
    let client = reqwest::Client::builder()
        .local_address(address)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = client.get(format!("{front}/signup")).send().await.expect("signup page");
    let cookies: Vec<String> = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
        .collect();
    let body = page.text().await.expect("body");
    let at = body.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
    let csrf = body[at..].split('"').next().expect("token");
    let res = client
        .post(format!("{front}/signup"))
        .header("cookie", cookies.join("; "))
        .form(&[("csrf", csrf), ("email", email), ("password", "a long enough passphrase")])
        .send()
        .await
        .expect("signup");
    let to = res.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("").to_string();
    format!("{} {to}", res.status().as_u16())
}

#[tokio::test]
async fn under_slipway_dev_each_website_visitor_is_limited_as_itself_not_as_web() {
    let dev = DevStack::start().await;
    // Auth allows 20 signups an hour from one address: 25 visitors pass only if each counts
    // as itself.
    let mut outcomes = Vec::new();
    for n in 0..25u8 {
        let address = std::net::IpAddr::from([127, 0, 1, 10 + n]);
        outcomes.push(sign_up_from(&dev.front, address, &format!("visitor{n}@example.com")).await);
    }
    let pool = dev.db.pool().await;
    let addresses: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT host(ip) FROM auth.audit_events WHERE event = 'signup' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("audit");
    let (_, log) = dev.stop().await;
    assert!(
        outcomes.iter().all(|o| o == "303 /check-email"),
        "every visitor was accepted: {outcomes:?}\n{log}"
    );
    assert_eq!(addresses.len(), 25, "auth saw each visitor's own address: {addresses:?}");
    assert!(addresses.iter().all(|a| a.starts_with("127.0.1.")), "{addresses:?}");
}
