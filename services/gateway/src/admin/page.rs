//! The admin HTML page: every route and instance with health, in-flight, request and error
//! counts, refreshed every few seconds without script.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::response::Html;

use crate::proxy::Proxy;

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const HEAD: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
    <meta http-equiv=\"refresh\" content=\"3\"><title>Slipway gateway</title><style>\
    body{font:15px system-ui,sans-serif;margin:2rem;color:#1d2433}\
    table{border-collapse:collapse;width:100%;margin-bottom:2rem}\
    th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #dde}\
    .up{color:#137333}.down{color:#b3261e}small{color:#667}</style></head><body><h1>Gateway</h1>";

pub async fn page(State(p): State<Arc<Proxy>>) -> Html<String> {
    let m = &p.metrics;
    let mut out = String::from(HEAD);
    let _ = write!(
        out,
        "<p>{} requests · {} unknown route · {} no healthy instance · {} rate limited · {} retried</p>",
        m.requests.load(Ordering::Relaxed),
        m.unknown_host.load(Ordering::Relaxed),
        m.no_healthy_instance.load(Ordering::Relaxed),
        m.rate_limited.load(Ordering::Relaxed),
        m.retries.load(Ordering::Relaxed),
    );
    for r in &p.table.load().routes {
        let _ = write!(
            out,
            "<h2>{}</h2><p><small>path {}{}</small></p><table><tr><th>Instance</th><th>Health</th>\
             <th>In flight</th><th>Requests</th><th>Errors</th></tr>",
            esc(&r.name),
            esc(&r.prefix),
            if r.protected { " · protected" } else { "" },
        );
        if r.instances.is_empty() {
            out.push_str("<tr><td colspan=\"5\" class=\"down\">no instance: requests get 503</td></tr>");
        }
        for i in &r.instances {
            let (class, health) = match (i.healthy.load(Ordering::Relaxed), i.available()) {
                (true, true) => ("up", "healthy"),
                (true, false) => ("down", "ejected"),
                _ => ("down", "unhealthy"),
            };
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"{class}\">{health}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                i.addr,
                i.outstanding.load(Ordering::Relaxed),
                i.requests.load(Ordering::Relaxed),
                i.errors.load(Ordering::Relaxed),
            );
        }
        out.push_str("</table>");
    }
    out.push_str(
        "<p><small>JSON: <a href=\"/routes\">/routes</a> · Prometheus: <a href=\"/metrics\">/metrics</a>\
         </small></p></body></html>",
    );
    Html(out)
}
