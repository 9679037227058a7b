//! Beyond plain HTTP/1.1 requests: upgraded connections (the WebSocket handshake) are tunnelled
//! both ways, and clients speaking HTTP/2 (h2c) are served.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use testkit::eventually;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{Backend, route, spawn_gateway};

const SOON: Duration = Duration::from_secs(10);

/// Reads an HTTP head (up to the blank line), lowercased.
async fn read_head(r: &mut (impl AsyncBufReadExt + Unpin)) -> Option<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            return Some(head.to_ascii_lowercase());
        }
        head.push_str(&line);
    }
}

/// A raw backend: answers health checks with 200, and an upgrade request with 101, after which
/// it echoes every byte it receives.
async fn upgrade_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                while let Some(head) = read_head(&mut stream).await {
                    if head.contains("upgrade: websocket") && head.contains("connection: upgrade") {
                        let reply = "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\nx-tunnel: yes\r\n\r\n";
                        let _ = stream.get_mut().write_all(reply.as_bytes()).await;
                        let mut buf = [0u8; 1024];
                        while let Ok(n @ 1..) = stream.read(&mut buf).await {
                            let _ = stream.get_mut().write_all(&buf[..n]).await;
                        }
                        return;
                    }
                    let ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if stream.get_mut().write_all(ok.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_websocket_upgrade_is_tunnelled_both_ways() {
    let backend = upgrade_backend().await;
    let gw = spawn_gateway(&route("ws", "", &[backend]), &[]).await;
    eventually(SOON, "in rotation", async || gw.healthy(backend).await).await;

    let gateway: SocketAddr = gw.base.trim_start_matches("http://").parse().expect("addr");
    let mut client = BufReader::new(TcpStream::connect(gateway).await.expect("connect"));
    let handshake = "GET /chat HTTP/1.1\r\nhost: ws.test\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
                     sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    client.get_mut().write_all(handshake.as_bytes()).await.expect("handshake");
    let head = read_head(&mut client).await.expect("an answer");
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket") && head.contains("x-tunnel: yes"), "{head}");

    for message in ["first frame", "second frame, after the first came back"] {
        client.get_mut().write_all(message.as_bytes()).await.expect("send");
        let mut echoed = vec![0u8; message.len()];
        tokio::time::timeout(SOON, client.read_exact(&mut echoed)).await.expect("in time").expect("echo");
        assert_eq!(echoed, message.as_bytes());
    }
}

#[tokio::test]
async fn a_client_speaking_http2_is_served() {
    let app = Backend::start("app").await;
    let gw = spawn_gateway(&route("app", "", &[app.addr]), &[]).await;
    eventually(SOON, "in rotation", async || gw.healthy(app.addr).await).await;

    let gateway: SocketAddr = gw.base.trim_start_matches("http://").parse().expect("addr");
    let stream = TcpStream::connect(gateway).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.expect("h2c");
    tokio::spawn(conn);
    let req = http::Request::get("http://h2.test/hello").body(Empty::<bytes::Bytes>::new()).expect("request");
    let res = sender.send_request(req).await.expect("answer");
    assert_eq!((res.version(), res.status().as_u16()), (http::Version::HTTP_2, 200));
    let body = res.into_body().collect().await.expect("body").to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!((json["backend"].as_str(), json["path"].as_str()), (Some("app"), Some("/hello")));
}

#[tokio::test]
async fn a_connection_that_sends_nothing_dribbles_headers_or_goes_quiet_is_closed() {
    let app = Backend::start("app").await;
    let gw = spawn_gateway(
        &route("app", "", &[app.addr]),
        &[("SLIPWAY_GATEWAY_HEADER_TIMEOUT", "300ms"), ("SLIPWAY_GATEWAY_IDLE_TIMEOUT", "500ms")],
    )
    .await;
    let gateway: SocketAddr = gw.base.trim_start_matches("http://").parse().expect("addr");
    for opening in ["", "GET / HTTP/1.1\r\nhost: x\r\n"] {
        let mut stream = TcpStream::connect(gateway).await.expect("connect");
        stream.write_all(opening.as_bytes()).await.expect("write");
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(SOON, stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the gateway closed a connection that opened with {opening:?}");
    }
    // Idle between requests: a kept-alive connection that goes quiet is closed too.
    let mut stream = TcpStream::connect(gateway).await.expect("connect");
    eventually(SOON, "in rotation", async || gw.healthy(app.addr).await).await;
    stream.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.expect("request");
    let mut first = [0u8; 12];
    stream.read_exact(&mut first).await.expect("an answer");
    assert_eq!(&first, b"HTTP/1.1 200");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(SOON, stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "an idle kept-alive connection is closed");
}
