//! Beyond plain HTTP/1.1 requests: upgraded connections (the WebSocket handshake) are tunnelled
//! both ways, clients speaking HTTP/2 (h2c) are served, and the gateway's own HTTP/1.1 path
//! hands a connection to hyper midway without losing a byte.

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

    let gateway = gw.addr();
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

    let gateway = gw.addr();
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
    let gateway = gw.addr();
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

/// Reads one answer with a `content-length` from `r`: its head (lowercased) and body.
async fn read_answer(r: &mut (impl AsyncBufReadExt + Unpin)) -> (String, serde_json::Value) {
    let head = read_head(r).await.expect("an answer");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("a content-length in {head}"));
    let mut body = vec![0; length];
    r.read_exact(&mut body).await.expect("the body");
    (head, serde_json::from_slice(&body).expect("json"))
}

#[tokio::test]
async fn pipelined_gets_then_a_post_then_gets_share_one_kept_alive_connection() {
    let app = Backend::start("app").await;
    let gw = spawn_gateway(&route("app", "", &[app.addr]), &[]).await;
    eventually(SOON, "in rotation", async || gw.healthy(app.addr).await).await;
    let gateway = gw.addr();
    let mut stream = BufReader::new(TcpStream::connect(gateway).await.expect("connect"));
    // Two GETs in one write: answered in order, each with its length and a date.
    let two = "GET /one HTTP/1.1\r\nhost: x\r\n\r\nGET /two?q=1 HTTP/1.1\r\nhost: x\r\n\r\n";
    stream.get_mut().write_all(two.as_bytes()).await.expect("write");
    for path in ["/one", "/two?q=1"] {
        let (head, json) = read_answer(&mut stream).await;
        assert!(head.starts_with("http/1.1 200 ok\r\n") && head.contains("\r\ndate: "), "{head}");
        assert_eq!(json["path"], path);
        assert_eq!(json["headers"]["x-forwarded-host"], "x");
    }
    // A request with a body, then more GETs, on the same connection.
    let post = "POST /three HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello";
    stream.get_mut().write_all(post.as_bytes()).await.expect("write");
    let (_, json) = read_answer(&mut stream).await;
    assert_eq!(
        (json["path"].as_str(), json["headers"]["content-length"].as_str()),
        (Some("/three"), Some("5"))
    );
    stream
        .get_mut()
        .write_all(b"GET /four HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let (_, json) = read_answer(&mut stream).await;
    assert_eq!(json["path"], "/four");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(SOON, stream.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "closed after the request that asked: {closed:?}");
    assert_eq!(app.hits(), 4);
}

#[tokio::test]
async fn each_part_of_a_streamed_answer_reaches_the_client_before_the_next_is_sent() {
    let (first_seen, seen) = tokio::sync::oneshot::channel::<()>();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Some(seen)));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                while let Some(head) = read_head(&mut stream).await {
                    if !head.starts_with("get /stream") {
                        let ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        let _ = stream.get_mut().write_all(ok.as_bytes()).await;
                        continue;
                    }
                    let start = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n";
                    let _ = stream.get_mut().write_all(start.as_bytes()).await;
                    // The second part is sent only once the client has the first.
                    let wait = seen.lock().expect("lock").take();
                    if let Some(seen) = wait {
                        let _ = seen.await;
                    }
                    let _ = stream.get_mut().write_all(b"6\r\nsecond\r\n0\r\n\r\n").await;
                }
            });
        }
    });
    let gw = spawn_gateway(&route("app", "", &[addr]), &[]).await;
    eventually(SOON, "in rotation", async || gw.healthy(addr).await).await;
    let gateway = gw.addr();
    let mut stream = BufReader::new(TcpStream::connect(gateway).await.expect("connect"));
    stream.get_mut().write_all(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n").await.expect("write");
    let head =
        tokio::time::timeout(SOON, read_head(&mut stream)).await.expect("a head in time").expect("a head");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let mut got = String::new();
    while !got.contains("first") {
        let mut line = String::new();
        let read = tokio::time::timeout(SOON, stream.read_line(&mut line)).await;
        assert!(matches!(read, Ok(Ok(1..))), "the first part arrives on its own: {got:?}");
        got.push_str(&line);
    }
    first_seen.send(()).expect("the backend waits");
    let mut rest = String::new();
    while !rest.ends_with("0\r\n\r\n") {
        let mut line = String::new();
        let read = tokio::time::timeout(SOON, stream.read_line(&mut line)).await;
        assert!(matches!(read, Ok(Ok(1..))), "the rest arrives: {rest:?}");
        rest.push_str(&line);
    }
    assert!(rest.contains("second"), "{rest}");
}
