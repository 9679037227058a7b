//! What a service logs, read back from the real subscriber: its own binary, since the
//! subscriber is process-global.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use kit::config::{HttpConfig, LogFormat};
use kit::health::Readiness;
use kit::problem::{Problem, log_internal};
use kit::server::{Server, service_router};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn an_internal_error_logs_its_cause_chain_with_the_request_id_in_json() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    kit::telemetry::init_with_writer("info", LogFormat::Json, move || writer.clone()).expect("subscriber");

    let failing = get(|| async {
        log_internal(&anyhow::anyhow!("connection refused").context("loading the user row"));
        Problem::internal()
    });
    let config = HttpConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        shutdown_grace: Duration::from_secs(1),
        request_timeout: Duration::from_secs(5),
        body_limit: 1024,
        trusted_proxies: Default::default(),
    };
    let router = service_router(Router::new().route("/fail", failing), Readiness::new(), &config);
    let server = Server::bind(config.addr, router, config.shutdown_grace).await.expect("bind");
    let url = format!("http://127.0.0.1:{}/fail", server.port());
    tokio::spawn(server.run_until(std::future::pending()));

    let res =
        reqwest::Client::new().get(url).header("x-request-id", "trace-me-42").send().await.expect("answer");
    assert_eq!(res.status(), 500);

    let text = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf8");
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("every line is JSON")).collect();
    let error = lines
        .iter()
        .find(|l| l["fields"]["message"] == "internal error")
        .unwrap_or_else(|| panic!("no internal error line in {text}"));
    assert_eq!(error["fields"]["error"], "loading the user row: connection refused");
    assert_eq!(error["span"]["request_id"], "trace-me-42", "{error}");
    let finished = lines.iter().find(|l| l["fields"]["message"] == "request failed").expect("access line");
    assert_eq!(finished["fields"]["status"], 500);
    assert_eq!(finished["span"]["request_id"], "trace-me-42");
}
