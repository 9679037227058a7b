//! The `auth` binary itself: subcommands, exit codes, JSON logs with request ids, SIGTERM.

use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::{TestDb, eventually};

use crate::helpers::test_vars;

const AUTH: &str = env!("CARGO_BIN_EXE_auth");

fn auth(vars: &[(String, String)]) -> Command {
    let mut cmd = Command::new(AUTH);
    cmd.env_clear().envs(vars.iter().map(|(k, v)| (k, v))).current_dir(std::env::temp_dir());
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[tokio::test]
async fn the_binary_migrates_serves_logs_request_ids_in_json_and_exits_0_on_sigterm() {
    let db = TestDb::create().await;
    let port = free_port().to_string();
    let mut vars = test_vars(&db);
    vars.retain(|(k, _)| k != "SLIPWAY_AUTH_PORT");
    vars.push(("SLIPWAY_AUTH_PORT".into(), port.clone()));
    vars.push(("SLIPWAY_LOG_FORMAT".into(), "json".into()));

    let child = auth(&vars).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().expect("auth starts");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    let healthcheck =
        || auth(&vars).arg("healthcheck").stderr(Stdio::null()).status().expect("healthcheck runs");
    eventually(Duration::from_secs(20), "`auth healthcheck` passes", async || healthcheck().success()).await;

    let res = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .header("x-request-id", "req-from-gateway-7")
        .send()
        .await
        .expect("auth answers");
    assert_eq!(res.headers()["x-request-id"], "req-from-gateway-7");

    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let out =
        tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("join").expect("wait");
    assert_eq!(out.status.code(), Some(0), "a SIGTERM stop is a clean exit");

    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> =
        stderr.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
    let message = |l: &serde_json::Value| l["fields"]["message"].as_str().unwrap_or_default().to_string();
    assert!(lines.iter().any(|l| message(l) == "migration applied"), "{stderr}");
    let served = lines
        .iter()
        .find(|l| l["span"]["request_id"] == "req-from-gateway-7" && message(l) == "request finished")
        .unwrap_or_else(|| panic!("no access line with the request id in {stderr}"));
    assert_eq!(served["fields"]["status"], 200);
    assert!(lines.iter().any(|l| message(l) == "drained, stopped"), "{stderr}");
    assert!(!stderr.contains(&db.url), "the database URL is a secret and never logged");
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
        [("SLIPWAY_ENV", "test"), ("SLIPWAY_AUTH_PORT", &free_port().to_string())]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let out = auth(&vars).arg("healthcheck").output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not ready"));
}
