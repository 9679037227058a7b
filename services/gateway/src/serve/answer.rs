//! An answer written on the gateway's own HTTP/1.1 path, as hyper's server writes one: the
//! status line and headers (an instance's fields as it sent them, then the gateway's own), a
//! `Date` if it has none, and the body framed by its length when that is known, chunked when
//! not, absent for 1xx, 204 and 304. A small body leaves in the same write as the head; a body
//! that streams is written as it comes.

use std::cell::RefCell;
use std::io::{self, Write as _};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::StatusCode;
use http::header;
use http_body_util::BodyExt as _;
use hyper::body::{Body as _, Frame};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use crate::access_log::decimal;
use crate::body::Body;
use crate::proxy::{Answer, X_REQUEST_ID};
use crate::upstream::connection_has;

/// Bytes gathered before a write: a head and a small body go out together.
const GATHER: usize = 16 * 1024;

type Next = Option<Result<Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>>;

/// Writes `answer`, an instance's fields as they came; whether the connection may carry
/// another request (the answer went out whole and neither side asked to close).
pub async fn write<W: AsyncWrite + Unpin>(
    io: &mut W,
    answer: Answer,
    out: &mut Vec<u8>,
    close: bool,
) -> io::Result<bool> {
    let Answer { response, passed, request_id } = answer;
    let (parts, mut body) = response.into_parts();
    let status = parts.status;
    let bodiless =
        status.is_informational() || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let length = if bodiless { None } else { body.size_hint().exact() };
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let said_close = connection_has(&parts.headers, "close");
    let closes = close || said_close;
    let mut dated = false;
    // The instance's fields as they came, less those the gateway sets itself (the request id
    // and those in the map) and the body's length, which is written below.
    if let Some(passed) = &passed {
        for (name, value) in passed.not_in(&parts.headers) {
            let is = |other: &str| name.eq_ignore_ascii_case(other.as_bytes());
            if (is("content-length") && status != StatusCode::NOT_MODIFIED) || is(X_REQUEST_ID.as_str()) {
                continue;
            }
            dated |= is("date");
            line(out, name, value);
        }
    }
    for (name, value) in &parts.headers {
        if (name == header::CONTENT_LENGTH && status != StatusCode::NOT_MODIFIED)
            || name == header::TRANSFER_ENCODING
            || name == X_REQUEST_ID
        {
            continue;
        }
        dated |= name == header::DATE;
        line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    crate::spare_maps::give_back(parts.headers);
    // The request id, from [`Answer::request_id`] rather than from the map.
    line(out, X_REQUEST_ID.as_str().as_bytes(), request_id.as_bytes());
    if !dated {
        date(out);
    }
    if close && !said_close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    match (bodiless, length) {
        (true, _) => {}
        (false, Some(n)) => {
            out.extend_from_slice(b"content-length: ");
            decimal(out, n, 1);
            out.extend_from_slice(b"\r\n");
        }
        (false, None) => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
    if bodiless {
        io.write_all(out).await?;
        return Ok(!closes);
    }
    let mut sent = 0_u64;
    loop {
        let next = match ready_frame(&mut body) {
            Poll::Ready(next) => next,
            // Nothing more yet: what is gathered goes out now, not when the body goes on.
            Poll::Pending => {
                flush(io, out).await?;
                body.frame().await
            }
        };
        let data = match next {
            None => break,
            Some(Err(error)) => {
                flush(io, out).await?;
                tracing::debug!(error, "an answer's body failed midway: closing the connection");
                return Ok(false);
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                _ => continue,
            },
        };
        sent += data.len() as u64;
        if length.is_none() {
            let _ = write!(out, "{:x}\r\n", data.len());
        }
        if out.len() + data.len() <= GATHER {
            out.extend_from_slice(&data);
        } else {
            flush(io, out).await?;
            io.write_all(&data).await?;
        }
        if length.is_none() {
            out.extend_from_slice(b"\r\n");
        }
    }
    if length.is_none() {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    flush(io, out).await?;
    Ok(!closes && length.is_none_or(|n| n == sent))
}

/// The body's next frame if it is ready now, without waiting.
fn ready_frame(body: &mut Body) -> Poll<Next> {
    Pin::new(body).poll_frame(&mut Context::from_waker(Waker::noop()))
}

async fn flush<W: AsyncWrite + Unpin>(io: &mut W, out: &mut Vec<u8>) -> io::Result<()> {
    if !out.is_empty() {
        io.write_all(out).await?;
        out.clear();
    }
    Ok(())
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

thread_local! {
    /// The second the `Date` text was made for, and the text.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// A `Date` header for now (IMF-fixdate), its text made once a second.
fn date(out: &mut Vec<u8>) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(second, text)| {
        if *second != now {
            *second = now;
            *text = chrono::DateTime::from_timestamp(now as i64, 0)
                .map(|t| t.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
                .unwrap_or_default();
        }
        line(out, b"date", text.as_bytes());
    });
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, Response};
    use http_body_util::{Full, StreamBody};

    use super::*;
    use crate::body::empty;
    use crate::upstream::Passed;

    async fn written(res: Response<Body>, close: bool) -> (String, bool) {
        written_with(res, None, close).await
    }

    async fn written_with(response: Response<Body>, passed: Option<Passed>, close: bool) -> (String, bool) {
        let mut wire = Vec::new();
        let answer = Answer { response, passed, request_id: HeaderValue::from_static("gateway") };
        let reusable = write(&mut wire, answer, &mut Vec::new(), close).await.expect("write");
        (String::from_utf8(wire).expect("text"), reusable)
    }

    fn full(text: &'static str) -> Body {
        Full::new(Bytes::from_static(text.as_bytes())).map_err(|never| match never {}).boxed()
    }

    #[tokio::test]
    async fn a_body_of_known_length_goes_with_its_length_a_date_and_the_headers_as_they_were() {
        let mut res = Response::new(full("hello"));
        res.headers_mut().insert("x-a", HeaderValue::from_static("1"));
        res.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
        let (wire, reusable) = written(res, false).await;
        let (head, body) = wire.split_once("\r\n\r\n").expect("a head");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("\r\nx-a: 1") && head.contains("\r\ncontent-length: 5"), "{head}");
        assert!(!head.contains("999") && head.contains("\r\ndate: "), "{head}");
        assert_eq!((body, reusable), ("hello", true));
    }

    #[tokio::test]
    async fn an_instance_s_fields_go_as_they_came_less_those_the_gateway_sets_and_its_length() {
        let res = Response::new(full("hello"));
        let head = "Server: up\r\nX-Request-Id: instance\r\nContent-Length: 99\r\nDate: Sun, 06 Dec 2026 10:00:00 GMT";
        let raw = Bytes::from_static(head.as_bytes());
        let fields = head.split("\r\n").filter_map(|line| line.split_once(": "));
        let passed = Passed::new(&raw, fields.map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        let (wire, _) = written_with(res, Some(passed), false).await;
        let (head, body) = wire.split_once("\r\n\r\n").expect("a head");
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\nServer: up\r\nDate: Sun, 06 Dec 2026 10:00:00 GMT\r\n\
             x-request-id: gateway\r\ncontent-length: 5"
        );
        assert_eq!(body, "hello");
    }

    #[tokio::test]
    async fn a_body_of_unknown_length_is_chunked() {
        let frames = tokio_stream::iter(
            ["ab", "", "cde"]
                .map(|s| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(s.as_bytes())))),
        );
        let body = StreamBody::new(frames).map_err(|never| match never {}).boxed();
        let (wire, reusable) = written(Response::new(body), false).await;
        let (head, body) = wire.split_once("\r\n\r\n").expect("a head");
        assert!(
            head.contains("\r\ntransfer-encoding: chunked") && !head.contains("content-length"),
            "{head}"
        );
        assert_eq!((body, reusable), ("2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n", true));
    }

    #[tokio::test]
    async fn no_content_has_no_framing_and_a_close_on_either_side_ends_the_connection() {
        let mut res = Response::new(empty());
        *res.status_mut() = StatusCode::NO_CONTENT;
        let (wire, reusable) = written(res, true).await;
        assert!(
            wire.starts_with("HTTP/1.1 204 No Content\r\n") && wire.ends_with("connection: close\r\n\r\n"),
            "{wire}"
        );
        assert!(!wire.contains("content-length") && !reusable, "{wire}");
        let mut res = Response::new(empty());
        res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        let (wire, reusable) = written(res, false).await;
        assert!(wire.contains("\r\ncontent-length: 0\r\n") && !reusable, "{wire}");
        assert_eq!(wire.matches("connection: close").count(), 1, "{wire}");
    }
}
