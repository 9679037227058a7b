//! TLS termination: the certificate is chosen by SNI from a folder of PEM pairs, a subdomain
//! without its own pair gets its parent's, and requests reach the instance marked https.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use testkit::eventually;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::helpers::{Backend, route, spawn_gateway};

const SOON: Duration = Duration::from_secs(10);

/// Writes a self-signed `<host>.crt`/`<host>.key` pair for `names`; returns the certificate.
fn pair(dir: &std::path::Path, host: &str, names: &[&str]) -> CertificateDer<'static> {
    let made = rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .expect("certificate");
    std::fs::write(dir.join(format!("{host}.crt")), made.cert.pem()).expect("crt");
    std::fs::write(dir.join(format!("{host}.key")), made.key_pair.serialize_pem()).expect("key");
    made.cert.der().clone()
}

/// Connects with SNI `name`, trusting `root`; the certificate served and the JSON answer to GET /.
async fn fetch(
    addr: std::net::SocketAddr,
    name: &str,
    root: &CertificateDer<'static>,
) -> (Vec<u8>, serde_json::Value) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let server_name = ServerName::try_from(name.to_string()).expect("name");
    let tls = TlsConnector::from(Arc::new(config)).connect(server_name, tcp).await.expect("handshake");
    let served = tls.get_ref().1.peer_certificates().expect("a certificate")[0].to_vec();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.expect("http");
    tokio::spawn(conn);
    let req = http::Request::get("/").header("host", name).body(Empty::<bytes::Bytes>::new()).expect("req");
    let res = sender.send_request(req).await.expect("answer");
    assert_eq!(res.status(), 200);
    let hsts = res.headers().get("strict-transport-security").map(|h| h.to_str().expect("ascii").to_string());
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let mut answer: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    answer["hsts"] = serde_json::json!(hsts);
    (served, answer)
}

#[tokio::test]
async fn the_certificate_is_chosen_by_sni_and_requests_arrive_marked_https() {
    let dir = std::env::temp_dir().join(format!("gateway-certs-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let a = pair(&dir, "a.test", &["a.test"]);
    let b = pair(&dir, "b.test", &["b.test", "*.b.test"]);
    let fallback = pair(&dir, "default", &["fallback.test"]);
    let app = Backend::start("app").await;
    let gw = spawn_gateway(
        &route("app", "", &[app.addr]),
        &[("SLIPWAY_GATEWAY_TLS_DIR", dir.to_str().expect("utf-8")), ("SLIPWAY_GATEWAY_TLS_PORT", "0")],
    )
    .await;
    eventually(SOON, "in rotation", async || gw.healthy(app.addr).await).await;
    let tls = gw.tls.expect("a TLS listener");

    let (served, answer) = fetch(tls, "a.test", &a).await;
    assert_eq!(served, a.to_vec(), "a.test gets its own certificate");
    assert_eq!(answer["headers"]["x-forwarded-proto"], "https");
    assert_eq!(answer["hsts"], "max-age=31536000", "HTTPS answers carry HSTS");
    let plain = gw.raw("POST /cart?item=1 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0", b"").await;
    assert_eq!(plain.0, 308, "plain HTTP is sent to HTTPS, method kept");
    let no_follow =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let redirected = no_follow
        .get(format!("{}/cart?item=1", gw.base))
        .header("host", "a.test")
        .send()
        .await
        .expect("answer");
    assert_eq!(redirected.status(), 308);
    let to = redirected.headers()["location"].to_str().expect("ascii");
    assert_eq!(to, "https://a.test/cart?item=1", "the public HTTPS port (443 unless told) is not shown");
    assert_eq!(app.hits(), 1, "only the HTTPS request reached the instance");
    assert_eq!(fetch(tls, "shop.b.test", &b).await.0, b.to_vec(), "a subdomain gets its parent's pair");
    assert_eq!(
        fetch(tls, "fallback.test", &fallback).await.0,
        fallback.to_vec(),
        "unknown names get the default"
    );
    let _ = std::fs::remove_dir_all(dir);
}
