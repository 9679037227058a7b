//! The admin listener (its own port, never public): an HTML page and JSON of the routes and
//! instances, Prometheus metrics, and the gateway's own health.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde_json::json;

use crate::proxy::Proxy;

mod page;

/// `gateway routes`: prints the running gateway's `/routes` JSON, asked on its admin
/// listener from inside its container (what `slipway deploy` reads to see a new instance in
/// rotation); exit 1 when the gateway does not answer.
pub fn print_routes() -> std::process::ExitCode {
    use kit::service::Service as _;
    let sources = kit::config::Sources::from_process(project::SCOPES);
    let config = match crate::Config::load(&sources) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("gateway: {errors}");
            return std::process::ExitCode::from(kit::service::EXIT_CONFIG);
        }
    };
    let addr = config.probe();
    let asked = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(kit::service::get(&addr, "/routes")));
    match asked {
        Ok((200, body)) => {
            println!("{}", String::from_utf8_lossy(&body));
            std::process::ExitCode::SUCCESS
        }
        Ok((status, _)) => {
            eprintln!("gateway: {addr}/routes answered {status}");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("gateway: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

pub fn router(proxy: Arc<Proxy>) -> Router {
    Router::new()
        .route("/", get(page::page))
        .route("/routes", get(routes))
        .route("/metrics", get(metrics))
        .with_state(proxy)
}

async fn routes(State(p): State<Arc<Proxy>>) -> Json<serde_json::Value> {
    let table = p.table.load();
    let routes: Vec<_> = table
        .routes
        .iter()
        .map(|r| {
            let instances: Vec<_> = r
                .instances
                .iter()
                .map(|i| {
                    json!({
                        "addr": i.addr.to_string(),
                        "healthy": i.healthy.load(Ordering::Relaxed),
                        "available": i.available(),
                        "in_flight": i.outstanding.load(Ordering::Relaxed),
                        "requests": i.requests.load(Ordering::Relaxed),
                        "errors": i.errors.load(Ordering::Relaxed),
                    })
                })
                .collect();
            json!({ "name": r.name, "path": r.prefix, "protected": r.protected, "instances": instances })
        })
        .collect();
    Json(json!({ "routes": routes }))
}

async fn metrics(State(p): State<Arc<Proxy>>) -> impl IntoResponse {
    let m = &p.metrics;
    let mut out = String::new();
    let counter = |out: &mut String, name: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    };
    counter(&mut out, "gateway_requests_total", "Requests answered.", m.requests.load(Ordering::Relaxed));
    let _ = writeln!(
        out,
        "# HELP gateway_responses_total Responses by status class.\n# TYPE gateway_responses_total counter"
    );
    for (i, c) in m.by_class.iter().enumerate() {
        let _ =
            writeln!(out, "gateway_responses_total{{class=\"{}xx\"}} {}", i + 1, c.load(Ordering::Relaxed));
    }
    for (name, help, value) in [
        ("gateway_unknown_route_total", "Requests no route matched (404).", &m.unknown_host),
        (
            "gateway_no_healthy_instance_total",
            "Requests refused for want of a healthy instance (503).",
            &m.no_healthy_instance,
        ),
        ("gateway_rate_limited_total", "Requests refused by rate limits (429).", &m.rate_limited),
        ("gateway_unauthorized_total", "Requests refused by token checks (401).", &m.unauthorized),
        ("gateway_retries_total", "Requests retried on another instance.", &m.retries),
        (
            "gateway_reload_failures_total",
            "Routes file reloads refused (the current routes stay).",
            &m.reload_failures,
        ),
    ] {
        counter(&mut out, name, help, value.load(Ordering::Relaxed));
    }
    let _ = writeln!(
        out,
        "# HELP gateway_instance_healthy 1 if the instance passes its checks.\n# TYPE gateway_instance_healthy gauge"
    );
    for r in &p.table.load().routes {
        for i in &r.instances {
            let _ = writeln!(
                out,
                "gateway_instance_healthy{{route=\"{}\",instance=\"{}\"}} {}",
                r.name,
                i.addr,
                u8::from(i.healthy.load(Ordering::Relaxed))
            );
        }
    }
    ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
