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

#[tokio::test]
async fn slipway_dev_puts_the_gateway_in_front_of_web_and_auth() {
    let db = TestDb::create().await;
    let ports = Ports::new();
    let mut vars = ports.vars();
    vars.push(("DATABASE_URL", db.url.as_str()));
    let child =
        slipway(&vars).arg("dev").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn");
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    let front = format!("http://127.0.0.1:{}", ports.gateway);
    eventually(Duration::from_secs(60), "the site answers through the gateway", async || {
        reqwest::get(format!("{front}/login")).await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    let jwks = reqwest::get(format!("{front}/api/auth/.well-known/jwks.json")).await.expect("jwks");
    assert_eq!(jwks.status(), 200, "auth is routed under /api/auth");
    kill(pid, Signal::SIGINT).expect("Ctrl-C");
    let out =
        tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("join").expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
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
