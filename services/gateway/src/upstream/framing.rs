//! HTTP/1.1 message rules the client and the proxy share: a request body written with its
//! length or chunked, how an answer's body ends (RFC 9112 §6.3: with no body, after a length,
//! at the last chunk, or when the instance closes the connection), which headers are
//! hop-by-hop, and which methods may be repeated.

use bytes::Buf as _;
use http::header::{self, HeaderMap};
use http::{Method, StatusCode};
use http_body_util::BodyExt as _;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use super::conn::Failure;
use crate::body::Body;

/// How an answer's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// This many bytes (0: no body).
    Length(u64),
    Chunked,
    /// When the instance closes the connection.
    Close,
}

impl Framing {
    /// The framing of an answer to `method` with `status` and these `Content-Length` values.
    /// `codings_end_chunked`: whether it had a `Transfer-Encoding` (not passed on) whose last
    /// coding is chunked.
    pub fn of<'a>(
        method: &Method,
        status: StatusCode,
        codings_end_chunked: Option<bool>,
        mut lengths: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Self, Failure> {
        let bodiless = *method == Method::HEAD
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        if bodiless {
            return Ok(Framing::Length(0));
        }
        match codings_end_chunked {
            Some(true) => return Ok(Framing::Chunked),
            Some(false) => return Ok(Framing::Close),
            None => {}
        }
        let Some(first) = lengths.next() else { return Ok(Framing::Close) };
        if lengths.any(|other| other != first) {
            return Err(Failure::Protocol("differing Content-Length headers"));
        }
        Some(first)
            .filter(|v| !v.is_empty() && v.iter().all(u8::is_ascii_digit))
            .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
            .map(Framing::Length)
            .ok_or(Failure::Protocol("a bad Content-Length"))
    }

    /// Whether the body's end can be told without the connection closing.
    pub fn ends_on_its_own(self) -> bool {
        self != Framing::Close
    }
}

/// The headers that are hop-by-hop whatever `Connection` says (lowercase).
pub const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether a request with this method may be sent again: the idempotent methods of RFC 9110
/// §9.2.2 that the gateway retries (TRACE, idempotent too, it does not).
pub fn idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE)
}

/// Whether a message's `Connection` header lists `token` (case-insensitively).
pub fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Writes a request body, chunked or as is (its length already in the head).
pub async fn write_body(stream: &mut TcpStream, mut body: Body, chunked: bool) -> Result<(), Failure> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Failure::Io(std::io::Error::other(e)))?;
        let Ok(mut data) = frame.into_data() else { continue };
        if data.is_empty() {
            continue;
        }
        if chunked {
            stream.write_all(format!("{:x}\r\n", data.len()).as_bytes()).await?;
        }
        while data.has_remaining() {
            stream.write_buf(&mut data).await?;
        }
        if chunked {
            stream.write_all(b"\r\n").await?;
        }
    }
    if chunked {
        stream.write_all(b"0\r\n\r\n").await?;
    }
    Ok(())
}
