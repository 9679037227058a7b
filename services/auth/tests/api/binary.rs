//! The `auth` binary itself: subcommands, exit codes, JSON logs with request ids, SIGTERM.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use testkit::{TestDb, eventually};

use crate::helpers::test_vars;

const AUTH: &str = env!("CARGO_BIN_EXE_auth");

fn auth(vars: &[(String, String)]) -> Command {
    let mut cmd = Command::new(AUTH);
    cmd.env_clear().envs(vars.iter().map(|(k, v)| (k, v))).current_dir(std::env::temp_dir());
    cmd
}

/// The auth binary running on a free port with JSON logs, written to a file (a pipe nobody
/// reads until the end would fill and block the service's logging).
struct Running {
    base: String,
    pid: nix::unistd::Pid,
    child: std::process::Child,
    log: std::path::PathBuf,
}

async fn start_binary(db: &TestDb, extra: &[(&str, &str)]) -> Running {
    let port = testkit::free_port().to_string();
    let mut vars = test_vars(db);
    vars.retain(|(k, _)| k != "SLIPWAY_AUTH_PORT");
    vars.push(("SLIPWAY_AUTH_PORT".into(), port.clone()));
    vars.push(("SLIPWAY_LOG_FORMAT".into(), "json".into()));
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let log = std::env::temp_dir().join(format!("auth-{}.log", uuid::Uuid::new_v4().simple()));
    let file = std::fs::File::create(&log).expect("log file");
    let child = auth(&vars).stderr(file).stdout(Stdio::null()).spawn().expect("auth starts");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    let healthcheck =
        || auth(&vars).arg("healthcheck").stderr(Stdio::null()).status().expect("healthcheck runs");
    eventually(Duration::from_secs(20), "`auth healthcheck` passes", async || healthcheck().success()).await;
    Running { base: format!("http://127.0.0.1:{port}"), pid, child, log }
}

impl Running {
    /// SIGTERM; returns the exit code and every log line, parsed.
    async fn stop(self) -> (Option<i32>, String, Vec<serde_json::Value>) {
        nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let mut child = self.child;
        let status = tokio::task::spawn_blocking(move || child.wait()).await.expect("join").expect("wait");
        let stderr = std::fs::read_to_string(&self.log).expect("the log");
        let _ = std::fs::remove_file(&self.log);
        let lines = stderr
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
            .collect();
        (status.code(), stderr, lines)
    }
}

fn message(line: &serde_json::Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn the_binary_migrates_serves_logs_request_ids_in_json_and_exits_0_on_sigterm() {
    let db = TestDb::create().await;
    let running = start_binary(&db, &[]).await;
    let client = reqwest::Client::new();
    let res = client
        .get(format!("{}/.well-known/jwks.json", running.base))
        .header("x-request-id", "req-from-gateway-7")
        .send()
        .await
        .expect("auth answers");
    assert_eq!(res.headers()["x-request-id"], "req-from-gateway-7");
    // A health probe (Docker's HEALTHCHECK every few seconds) is not an info line.
    let probe = client.get(format!("{}/readyz", running.base)).header("x-request-id", "probe-1").send().await;
    assert_eq!(probe.expect("auth answers").status(), 200);

    let (code, stderr, lines) = running.stop().await;
    assert_eq!(code, Some(0), "a SIGTERM stop is a clean exit");
    assert!(lines.iter().any(|l| message(l) == "migration applied"), "{stderr}");
    let served = lines
        .iter()
        .find(|l| l["span"]["request_id"] == "req-from-gateway-7" && message(l) == "request finished")
        .unwrap_or_else(|| panic!("no access line with the request id in {stderr}"));
    assert_eq!(served["fields"]["status"], 200);
    assert!(
        !lines.iter().any(|l| l["span"]["request_id"] == "probe-1"),
        "a successful probe is logged at debug only: {stderr}"
    );
    assert!(lines.iter().any(|l| message(l) == "drained, stopped"), "{stderr}");
    assert!(!stderr.contains(&db.url), "the database URL is a secret and never logged");
}

#[tokio::test]
async fn passwords_and_tokens_never_reach_the_logs_even_at_debug_level() {
    let db = TestDb::create().await;
    let running = start_binary(&db, &[("SLIPWAY_LOG", "debug")]).await;
    let c = reqwest::Client::new();
    let post = async |path: &str, body: serde_json::Value, rid: &str| {
        let res = c
            .post(format!("{}{path}", running.base))
            .header("x-request-id", rid)
            .json(&body)
            .send()
            .await
            .expect("answer");
        let status = res.status().as_u16();
        (status, res.json::<serde_json::Value>().await.unwrap_or_default())
    };
    let (p1, p2) = ("first secret passphrase", "second secret passphrase");
    assert_eq!(
        post("/signup", json!({ "email": "ada@example.com", "password": p1 }), "rid-signup").await.0,
        202
    );
    let pool = db.pool().await;
    let link: String = sqlx::query_scalar(
        "SELECT payload->>'activation_url' FROM bus.events WHERE topic = 'auth.activation_requested'",
    )
    .fetch_one(&pool)
    .await
    .expect("event");
    let activation = link.split("token=").nth(1).expect("token").to_string();
    assert_eq!(post("/activation", json!({ "token": activation }), "rid-activate").await.0, 200);
    let (status, tokens) =
        post("/login", json!({ "email": "ada@example.com", "password": p1 }), "rid-login").await;
    assert_eq!(status, 200);
    let refresh = tokens["refresh_token"].as_str().expect("rt").to_string();
    let access = tokens["access_token"].as_str().expect("at").to_string();
    let (_, rotated) = post("/token/refresh", json!({ "refresh_token": refresh }), "rid-refresh").await;
    post("/login", json!({ "email": "ada@example.com", "password": p2 }), "rid-wrong").await;
    post("/password/reset", json!({ "email": "ada@example.com" }), "rid-reset").await;
    let mut reset_link = String::new();
    eventually(Duration::from_secs(15), "the queued reset request is handled", async || {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT payload->>'reset_url' FROM bus.events WHERE topic = 'auth.password_reset_requested'",
        )
        .fetch_optional(&pool)
        .await
        .expect("event");
        reset_link = found.unwrap_or_default();
        !reset_link.is_empty()
    })
    .await;
    let reset = reset_link.split("token=").nth(1).expect("token").to_string();
    assert_eq!(
        post("/password/reset/confirm", json!({ "token": reset, "new_password": p2 }), "rid-confirm").await.0,
        200
    );

    let (code, stderr, lines) = running.stop().await;
    assert_eq!(code, Some(0));
    let rotated_refresh = rotated["refresh_token"].as_str().expect("rt");
    let rotated_access = rotated["access_token"].as_str().expect("at");
    for secret in [p1, p2, &activation, &refresh, &access, rotated_refresh, rotated_access, &reset] {
        assert!(!stderr.contains(secret), "a secret reached the logs: {secret}");
    }
    for rid in
        ["rid-signup", "rid-activate", "rid-login", "rid-refresh", "rid-wrong", "rid-reset", "rid-confirm"]
    {
        assert!(lines.iter().any(|l| l["span"]["request_id"] == rid), "{rid} is not on any log line");
    }
    let audit_line = lines
        .iter()
        .find(|l| message(l) == "audit" && l["span"]["request_id"] == "rid-wrong")
        .expect("audit log");
    assert_eq!(audit_line["fields"]["outcome"], "bad-credentials");
}

#[test]
fn check_config_reports_every_problem_at_once_and_exits_78() {
    let vars: Vec<(String, String)> = [
        ("SLIPWAY_ENV", "dev"),
        ("SLIPWAY_AUTH_PORT", "http"),
        ("SLIPWAY_REQUEST_TIMEOUT", "forever"),
        ("SLIPWAY_AUTH_TOKN_KEY", "x"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let out = auth(&vars).arg("check-config").output().expect("runs");
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("3 configuration problems"), "{stderr}");
    for var in ["SLIPWAY_AUTH_PORT", "SLIPWAY_REQUEST_TIMEOUT", "SLIPWAY_AUTH_TOKN_KEY"] {
        assert!(stderr.contains(var), "{var} not reported: {stderr}");
    }
    assert!(stderr.contains("did you mean SLIPWAY_AUTH_TOKEN_KEY?"), "{stderr}");
}

#[test]
fn prod_refuses_to_start_with_the_development_token_key() {
    let vars: Vec<(String, String)> = [
        ("SLIPWAY_ENV", "prod"),
        ("SLIPWAY_DATABASE_URL", "postgres://auth:s3cret@db/slipway"),
        ("SLIPWAY_AUTH_TOKEN_KEY", "dev-only-token-key-not-secret"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let out = auth(&vars).output().expect("runs");
    assert_eq!(out.status.code(), Some(78), "serve refuses before binding anything");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SLIPWAY_AUTH_TOKEN_KEY: is the development default"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn healthcheck_exits_1_when_nothing_is_serving() {
    let vars: Vec<(String, String)> =
        [("SLIPWAY_ENV", "test"), ("SLIPWAY_AUTH_PORT", &testkit::free_port().to_string())]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let out = auth(&vars).arg("healthcheck").output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not ready"));
}
