//! The client against a real TCP server that answers each request with scripted bytes: every
//! way an HTTP/1.1 answer can be framed, and kept-alive connections reused or replaced.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use super::Pool;
use crate::body::{Body, empty};
use crate::upstream::SendError;

/// What the scripted instance does with a request.
#[derive(Debug, Clone, Copy)]
enum Then {
    /// Answers these bytes and keeps the connection.
    Answer(&'static str),
    /// Answers these bytes and closes the connection.
    AnswerAndClose(&'static str),
    /// Answers these bytes this long after the request came (a slow instance).
    AnswerAfter(Duration, &'static str),
    /// Closes the connection without answering.
    Close,
}

#[derive(Debug, Default)]
struct Seen {
    requests: Mutex<Vec<String>>,
    connections: AtomicUsize,
}

/// An instance on an ephemeral port that answers requests, whatever connection they come on,
/// in the order of `script`.
async fn instance(script: Vec<Then>) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    let seen = Arc::new(Seen::default());
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            shared.connections.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream, script.clone(), shared.clone()));
        }
    });
    (addr, seen)
}

async fn serve(mut stream: TcpStream, script: Arc<Mutex<VecDeque<Then>>>, seen: Arc<Seen>) {
    let mut buf = Vec::new();
    loop {
        // A request: its head, then a body of Content-Length bytes or chunks up to the last.
        let request = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end + 4]).to_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|n| n.trim().parse::<usize>().ok());
                let whole = match length {
                    Some(n) => (buf.len() >= end + 4 + n).then_some(end + 4 + n),
                    None if head.contains("transfer-encoding: chunked") => {
                        buf.windows(5).position(|w| w == b"0\r\n\r\n").map(|at| at + 5)
                    }
                    None => Some(end + 4),
                };
                if let Some(whole) = whole {
                    break String::from_utf8_lossy(&buf.drain(..whole).collect::<Vec<u8>>()).to_string();
                }
            }
            let mut chunk = [0_u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        seen.requests.lock().expect("lock").push(request);
        let next = script.lock().expect("lock").pop_front();
        match next {
            Some(Then::Answer(bytes)) => {
                let _ = stream.write_all(bytes.as_bytes()).await;
            }
            Some(Then::AnswerAfter(delay, bytes)) => {
                tokio::time::sleep(delay).await;
                let _ = stream.write_all(bytes.as_bytes()).await;
            }
            Some(Then::AnswerAndClose(bytes)) => {
                let _ = stream.write_all(bytes.as_bytes()).await;
                return;
            }
            Some(Then::Close) | None => return,
        }
    }
}

fn request(method: Method, body: Body) -> Request<Body> {
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = http::Uri::from_static("/x?y=1");
    req.headers_mut().insert(http::header::HOST, http::HeaderValue::from_static("example.test"));
    req
}

/// A deadline no answer here comes near.
fn in_time() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// Sends a request and reads its answer whole: (status, body).
async fn exchange(pool: &Pool, addr: SocketAddr, req: Request<Body>) -> Result<(u16, String), SendError> {
    let (res, _) = pool.send(addr, req, &[], in_time()).await?;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.expect("the body is read to its end").to_bytes();
    Ok((status, String::from_utf8_lossy(&body).to_string()))
}

async fn get(pool: &Pool, addr: SocketAddr) -> (u16, String) {
    exchange(pool, addr, request(Method::GET, empty())).await.expect("answered")
}

const OK_HI: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi";

#[tokio::test]
async fn answers_of_known_length_come_whole_and_their_connection_carries_the_next_request() {
    let (addr, seen) = instance(vec![Then::Answer(OK_HI), Then::Answer(OK_HI)]).await;
    let pool = Pool::default();
    assert_eq!(get(&pool, addr).await, (200, "hi".into()));
    assert_eq!(get(&pool, addr).await, (200, "hi".into()));
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
    let first = seen.requests.lock().expect("lock")[0].clone();
    assert!(first.starts_with("GET /x?y=1 HTTP/1.1\r\nhost: example.test\r\n"), "{first}");
}

#[tokio::test]
async fn an_answer_later_than_the_deadline_times_out_and_its_connection_is_not_kept() {
    let slow = Then::AnswerAfter(Duration::from_secs(3), OK_HI);
    let (addr, seen) = instance(vec![slow, Then::Answer(OK_HI)]).await;
    let pool = Pool::default();
    let soon = Instant::now() + Duration::from_millis(100);
    let late = pool.send(addr, request(Method::GET, empty()), &[], soon).await;
    assert!(matches!(late, Err(SendError::TimedOut)), "{late:?}");
    assert_eq!(get(&pool, addr).await, (200, "hi".into()));
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2, "the timed-out connection was dropped");
}

#[tokio::test]
async fn a_kept_connection_s_next_exchange_is_timed_by_its_own_deadline_not_the_last_one() {
    let (addr, seen) =
        instance(vec![Then::Answer(OK_HI), Then::AnswerAfter(Duration::from_millis(400), OK_HI)]).await;
    let pool = Pool::default();
    let short = Instant::now() + Duration::from_millis(150);
    let (res, _) = pool.send(addr, request(Method::GET, empty()), &[], short).await.expect("in time");
    assert_eq!(res.status(), 200);
    // The same connection, answered after the first exchange's deadline has passed.
    assert_eq!(get(&pool, addr).await, (200, "hi".into()));
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_idle_past_its_last_deadline_serves_the_next_exchange() {
    let (addr, seen) = instance(vec![Then::Answer(OK_HI), Then::Answer(OK_HI)]).await;
    let pool = Pool::default();
    let short = Instant::now() + Duration::from_millis(50);
    pool.send(addr, request(Method::GET, empty()), &[], short).await.expect("in time");
    // Kept in the pool while its timer's deadline passes (the timer fires with no one waiting).
    tokio::time::sleep_until(short + Duration::from_millis(100)).await;
    assert_eq!(get(&pool, addr).await, (200, "hi".into()));
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_answer_whose_lines_end_in_lf_alone_is_read_and_its_connection_reused() {
    let lf = "HTTP/1.1 200 OK\ncontent-length: 2\nx-a: 1\n\nlf";
    let (addr, seen) = instance(vec![Then::Answer(lf), Then::Answer(OK_HI)]).await;
    let pool = Pool::default();
    let (res, passed) =
        pool.send(addr, request(Method::GET, empty()), &[], in_time()).await.expect("an answer");
    let fields: Vec<(Vec<u8>, Vec<u8>)> =
        passed.expect("fields").iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
    assert_eq!(fields, [(b"content-length".to_vec(), b"2".to_vec()), (b"x-a".to_vec(), b"1".to_vec())]);
    assert_eq!(&res.into_body().collect().await.expect("a body").to_bytes()[..], b"lf");
    assert_eq!(get(&pool, addr).await, (200, "hi".into()));
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_chunked_answer_with_extensions_and_trailers_is_read_whole_and_the_connection_reused() {
    let chunked = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nx-t: 1\r\n\r\n";
    let (addr, seen) = instance(vec![Then::Answer(chunked), Then::Answer(OK_HI)]).await;
    let pool = Pool::default();
    assert_eq!(get(&pool, addr).await, (200, "abcde".into()));
    assert_eq!(get(&pool, addr).await, (200, "hi".into()));
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_answer_ended_by_closing_the_connection_is_read_to_its_end_and_the_connection_not_reused() {
    let until_close = "HTTP/1.1 200 OK\r\n\r\nall of it";
    let (addr, seen) = instance(vec![Then::AnswerAndClose(until_close), Then::Answer(OK_HI)]).await;
    let pool = Pool::default();
    assert_eq!(get(&pool, addr).await, (200, "all of it".into()));
    assert_eq!(get(&pool, addr).await, (200, "hi".into()));
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_answers_hop_by_hop_headers_are_read_and_not_passed_on() {
    let answer = "HTTP/1.1 200 OK\r\nconnection: close, x-hop\r\nx-hop: 1\r\nkeep-alive: timeout=5\r\nx-end: 2\r\ncontent-length: 2\r\n\r\nhi";
    let (addr, seen) = instance(vec![Then::Answer(answer), Then::Answer(OK_HI)]).await;
    let pool = Pool::default();
    let (mut res, passed) =
        pool.send(addr, request(Method::GET, empty()), &[], in_time()).await.expect("answered");
    passed.expect("the fields apart").append_to(res.headers_mut());
    let mut names: Vec<&str> = res.headers().keys().map(http::HeaderName::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["content-length", "x-end"]);
    drop(res);
    assert_eq!(get(&pool, addr).await, (200, "hi".into()));
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2, "`Connection: close` is obeyed");
}

#[tokio::test]
async fn interim_answers_are_skipped_and_an_answer_to_head_has_no_body() {
    let script = vec![
        Then::Answer(
            "HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
        ),
        Then::Answer("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"),
        Then::Answer("HTTP/1.1 204 No Content\r\n\r\n"),
        Then::Answer(OK_HI),
    ];
    let (addr, seen) = instance(script).await;
    let pool = Pool::default();
    assert_eq!(get(&pool, addr).await, (201, "ok".into()));
    let head = exchange(&pool, addr, request(Method::HEAD, empty())).await.expect("answered");
    assert_eq!(head, (200, String::new()));
    assert_eq!(get(&pool, addr).await, (204, String::new()));
    assert_eq!(get(&pool, addr).await, (200, "hi".into()));
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_get_on_a_kept_alive_connection_the_instance_closed_is_sent_again_on_a_new_one() {
    // The instance takes the second request and closes without a word, as one that timed the
    // connection out at that moment would.
    let (addr, seen) = instance(vec![Then::Answer(OK_HI), Then::Close, Then::Answer(OK_HI)]).await;
    let pool = Pool::default();
    assert_eq!(get(&pool, addr).await, (200, "hi".into()));
    assert_eq!(get(&pool, addr).await, (200, "hi".into()));
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    assert_eq!(seen.requests.lock().expect("lock").len(), 3, "sent on the closed connection, then again");
}

#[tokio::test]
async fn a_long_body_streams_from_the_connection_which_then_carries_the_next_request() {
    let long = "x".repeat(200_000);
    let answer: &'static str =
        Box::leak(format!("HTTP/1.1 200 OK\r\ncontent-length: 200000\r\n\r\n{long}").into_boxed_str());
    let (addr, seen) = instance(vec![Then::Answer(answer), Then::Answer(OK_HI)]).await;
    let pool = Pool::default();
    assert_eq!(get(&pool, addr).await, (200, long));
    assert_eq!(get(&pool, addr).await, (200, "hi".into()));
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_post_on_a_kept_alive_connection_the_instance_closed_is_not_sent_twice() {
    let (addr, seen) = instance(vec![Then::Answer(OK_HI), Then::Close, Then::Answer(OK_HI)]).await;
    let pool = Pool::default();
    assert_eq!(get(&pool, addr).await, (200, "hi".into()));
    let body = http_body_util::Full::new(Bytes::from_static(b"data")).map_err(|never| match never {}).boxed();
    let posted = exchange(&pool, addr, request(Method::POST, body)).await;
    assert!(matches!(posted, Err(SendError::Stale)), "{posted:?}");
    assert_eq!(seen.requests.lock().expect("lock").len(), 2, "the POST reached the instance once");
}

#[tokio::test]
async fn a_request_body_of_unknown_length_goes_chunked_and_a_known_one_with_its_length() {
    let (addr, seen) = instance(vec![Then::Answer(OK_HI), Then::Answer(OK_HI)]).await;
    let pool = Pool::default();
    let frames = futures_frames(&["hello", " world"]);
    exchange(&pool, addr, request(Method::POST, frames)).await.expect("answered");
    let known = http_body_util::Full::new(Bytes::from_static(b"abc")).map_err(|never| match never {}).boxed();
    exchange(&pool, addr, request(Method::PUT, known)).await.expect("answered");
    let requests = seen.requests.lock().expect("lock").clone();
    assert!(
        requests[0].contains("transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        "{}",
        requests[0]
    );
    assert!(requests[1].ends_with("content-length: 3\r\n\r\nabc"), "{}", requests[1]);
}

/// A body of these frames whose length is not known in advance.
fn futures_frames(parts: &[&'static str]) -> Body {
    let frames: Vec<Result<Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>> =
        parts.iter().map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes())))).collect();
    StreamBody::new(tokio_stream::iter(frames)).boxed()
}

#[tokio::test]
async fn answers_that_break_the_protocol_are_errors() {
    let script = vec![
        Then::Answer("HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nhi"),
        Then::Answer("HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n"),
        Then::Answer("NOT HTTP\r\n\r\n"),
        Then::Answer("HTTP/1.1 101 Switching Protocols\r\n\r\n"),
        Then::AnswerAndClose("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"),
    ];
    let (addr, _) = instance(script).await;
    let pool = Pool::default();
    for _ in 0..4 {
        let answer = exchange(&pool, addr, request(Method::GET, empty())).await;
        assert!(matches!(answer, Err(SendError::Protocol(_))), "{answer:?}");
    }
    let (res, _) = pool.send(addr, request(Method::GET, empty()), &[], in_time()).await.expect("a head");
    assert!(res.into_body().collect().await.is_err(), "a body cut short is an error");
}

#[tokio::test]
async fn the_oldest_idle_connection_is_dropped_once_its_instance_closed_it_as_traffic_flows() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let oldest = crate::upstream::Conn::connect(addr).await.expect("connect");
    let (closed_by_instance, _) = listener.accept().await.expect("accept");
    let newest = crate::upstream::Conn::connect(addr).await.expect("connect");
    let (_kept, _) = listener.accept().await.expect("accept");
    drop(closed_by_instance);
    oldest.stream.readable().await.expect("the close arrives");
    let idle = super::Idle::default();
    idle.put(oldest);
    idle.put(newest);
    assert!(idle.take().is_some(), "the newest connection is open");
    assert_eq!(idle.0.lock().expect("lock").len(), 0, "the closed oldest one was dropped on the way");
}

#[tokio::test]
async fn an_answer_sent_before_the_instance_stopped_reading_the_body_reaches_the_client() {
    // An instance that refuses a body by its head: it answers 413 and closes without reading
    // the body, which makes the client's writing fail part way.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0_u8; 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
        let answer =
            b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 9\r\nconnection: close\r\n\r\ntoo large";
        stream.write_all(answer).await.expect("answer");
    });
    let pool = Pool::default();
    let big = Bytes::from(vec![b'x'; 32 << 20]);
    let body = http_body_util::Full::new(big).map_err(|never| match never {}).boxed();
    let answered = exchange(&pool, addr, request(Method::POST, body)).await;
    assert_eq!(answered.expect("the instance's answer, not an error"), (413, "too large".to_string()));
}

#[tokio::test]
async fn connections_idle_past_the_timeout_are_closed_and_younger_ones_kept() {
    let (addr, seen) = instance(vec![Then::Answer(OK_HI), Then::Answer(OK_HI), Then::Answer(OK_HI)]).await;
    let pool = Pool::default();
    assert_eq!(get(&pool, addr).await, (200, "hi".into()));
    assert_eq!(pool.close_idle(Duration::from_secs(60)), 0, "a young idle connection stays");
    assert_eq!(get(&pool, addr).await, (200, "hi".into()));
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1, "and carries the next request");
    assert_eq!(pool.close_idle(Duration::ZERO), 1, "one idle past the timeout goes");
    assert_eq!(get(&pool, addr).await, (200, "hi".into()));
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2, "the next request opens a new one");
}
