//! One HTTP/1.1 connection to an instance, driven by the request that holds it: the request
//! head is written and the answer's head read in the request's own task, with no connection
//! task and no channel between the two (what hyper's client costs per request).

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Buf as _, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::framing::{Framing, HOP_BY_HOP};
use super::passed::{Passed, Spans};
use crate::body::Body;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest answer head accepted from an instance, in bytes.
const MAX_HEAD: usize = 64 * 1024;
/// The most header fields an answer may have.
const MAX_HEADERS: usize = 128;
const READ_CHUNK: usize = 16 * 1024;

/// Why an exchange with an instance failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// No connection: nothing was sent, so any request may go to another instance.
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    /// A kept-alive connection the instance had closed: it ended before a byte of an answer.
    #[error("the instance closed a kept-alive connection before answering")]
    Stale,
    #[error("the exchange failed: {0}")]
    Io(#[from] io::Error),
    #[error("the instance's answer is not valid HTTP/1.1: {0}")]
    Protocol(&'static str),
    /// No answer's head by the deadline (the upstream timeout).
    #[error("no answer within the upstream timeout")]
    TimedOut,
}

/// A connection, what was read from it beyond the last message, and its exchanges' timer.
#[derive(Debug)]
pub struct Conn {
    pub stream: TcpStream,
    pub buf: BytesMut,
    /// Made at the first exchange and kept for the connection's life: each exchange only
    /// moves its deadline later, which tokio does without touching its timer wheel (a new
    /// timer per request would be put in the wheel and taken out again each time).
    timer: Option<Pin<Box<Sleep>>>,
}

/// An answer's head: its status and header fields, how its body is framed, and whether the
/// connection may carry another exchange after it.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub passed: Passed,
    pub framing: Framing,
    pub reusable: bool,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Result<Self, Failure> {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(Failure::Connect(e)),
            Err(_) => return Err(Failure::Connect(io::ErrorKind::TimedOut.into())),
        };
        let _ = stream.set_nodelay(true);
        Ok(Self { stream, buf: BytesMut::new(), timer: None })
    }

    /// Whether a pooled connection is still open and quiet: an instance that closed it, or
    /// sent something unasked, makes it useless. Costs no system call while nothing arrived.
    pub fn is_idle_and_open(&self) -> bool {
        self.buf.is_empty()
            && matches!(self.stream.try_read(&mut [0_u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Writes a request head, then its body. `reused`: an error before anything was written
    /// is [`Failure::Stale`].
    pub async fn write(
        &mut self,
        head: &[u8],
        body: Option<(Body, bool)>,
        reused: bool,
    ) -> Result<(), Failure> {
        if let Err(e) = self.stream.write_all(head).await {
            return Err(if reused && gone(&e) { Failure::Stale } else { Failure::Io(e) });
        }
        if let Some((body, chunked)) = body {
            super::framing::write_body(&mut self.stream, body, chunked).await?;
        }
        Ok(())
    }

    /// Writes the request, then reads the answer's head (see [`Conn::write`] and
    /// [`Conn::read_head`]), given up at `deadline` ([`Failure::TimedOut`]). An instance may
    /// answer before it has read the whole body (a 413, say) and close: the write then fails,
    /// and the answer it sent, if it came, is the one to pass on, on a connection not to be
    /// reused.
    pub async fn exchange(
        &mut self,
        deadline: Instant,
        head: &[u8],
        body: Option<(Body, bool)>,
        method: &Method,
        upgrade: bool,
        reused: bool,
    ) -> Result<Head, Failure> {
        let mut timer = match self.timer.take() {
            Some(mut timer) => {
                timer.as_mut().reset(deadline);
                timer
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        let exchange = async {
            match self.write(head, body, reused).await {
                Ok(()) => self.read_head(method, upgrade, reused).await,
                Err(Failure::Io(error)) if gone(&error) => match self.read_head(method, false, false).await {
                    Ok(answer) => Ok(Head { reusable: false, ..answer }),
                    Err(_) => Err(Failure::Io(error)),
                },
                Err(failure) => Err(failure),
            }
        };
        let exchanged = tokio::select! {
            biased;
            exchanged = exchange => exchanged,
            () = &mut timer => Err(Failure::TimedOut),
        };
        self.timer = Some(timer);
        exchanged
    }

    /// Reads the answer's head, past any interim (1xx) answers. A 101 is an answer only to a
    /// request that asked to upgrade. `reused`: the connection ending first is [`Failure::Stale`].
    pub async fn read_head(&mut self, method: &Method, upgrade: bool, reused: bool) -> Result<Head, Failure> {
        let mut received = false;
        loop {
            if let Some(head) = self.parse_head(method, upgrade)? {
                return Ok(head);
            }
            if self.buf.len() >= MAX_HEAD {
                return Err(Failure::Protocol("the answer's head is over 64 KiB"));
            }
            self.buf.reserve(READ_CHUNK);
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) if reused && !received => return Err(Failure::Stale),
                Ok(0) => return Err(Failure::Protocol("the connection ended inside the answer's head")),
                Ok(_) => received = true,
                Err(e) if reused && !received && gone(&e) => return Err(Failure::Stale),
                Err(e) => return Err(Failure::Io(e)),
            }
        }
    }

    /// The head at the start of the buffer, once complete (interim answers are dropped). It is
    /// parsed where it lies and split off the buffer only once whole: no scan for its end
    /// first. httparse takes lines that end in LF alone too.
    fn parse_head(&mut self, method: &Method, upgrade: bool) -> Result<Option<Head>, Failure> {
        loop {
            let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
            let mut parsed = httparse::Response::new(&mut []);
            let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
                &mut parsed,
                &self.buf,
                &mut fields,
            ) {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(Failure::Protocol("over 128 header fields"));
                }
                Err(_) => return Err(Failure::Protocol("a malformed head")),
            };
            let code = parsed.code.unwrap_or(0);
            let status = StatusCode::from_u16(code).map_err(|_| Failure::Protocol("a bad status code"))?;
            if status.is_informational() && !(status == StatusCode::SWITCHING_PROTOCOLS && upgrade) {
                if status == StatusCode::SWITCHING_PROTOCOLS {
                    return Err(Failure::Protocol("101 to a request that did not ask to upgrade"));
                }
                self.buf.advance(len);
                continue;
            }
            let version = if parsed.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
            let mut hop = HopByHop::default();
            let kept = parsed.headers.iter().filter(|field| !hop.takes(field));
            let spans = Spans::of(&self.buf, kept.map(|field| (field.name.as_bytes(), field.value)));
            let mut passed = Passed::with(self.buf.split_to(len).freeze(), spans);
            if !hop.named.is_empty() {
                passed.remove_if(|name| {
                    hop.named.iter().any(|n| name.eq_ignore_ascii_case(n.as_str().as_bytes()))
                });
            }
            let framing =
                Framing::of(method, status, hop.codings_end_chunked, passed.values("content-length"))?;
            let keeps_alive = if version == Version::HTTP_10 { hop.keep_alive } else { !hop.close };
            let reusable = framing.ends_on_its_own() && keeps_alive;
            return Ok(Some(Head { status, passed, framing, reusable }));
        }
    }
}

/// What an answer's hop-by-hop headers say: they are read here and not passed on.
#[derive(Debug, Default)]
struct HopByHop {
    close: bool,
    keep_alive: bool,
    /// Whether there is a `Transfer-Encoding` and, if so, whether its last coding is chunked.
    codings_end_chunked: Option<bool>,
    /// Other headers `Connection` names as hop-by-hop.
    named: Vec<HeaderName>,
}

impl HopByHop {
    /// Whether `field` is hop-by-hop (it is then noted, not kept).
    fn takes(&mut self, field: &httparse::Header<'_>) -> bool {
        let is = |name: &str| field.name.eq_ignore_ascii_case(name);
        let tokens = || field.value.split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|t| !t.is_empty());
        if is("connection") {
            for token in tokens() {
                if token.eq_ignore_ascii_case(b"close") {
                    self.close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    self.keep_alive = true;
                } else if let Ok(name) = HeaderName::from_bytes(token) {
                    self.named.push(name);
                }
            }
            true
        } else if is("transfer-encoding") {
            self.codings_end_chunked =
                Some(tokens().next_back().is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")));
            true
        } else {
            HOP_BY_HOP.into_iter().any(is)
        }
    }
}

/// Whether an error means the peer had closed the connection.
fn gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionAborted
    )
}

/// Header fields set on a request for the hop to its instance, written before the request's
/// own: each `Some` replaces every field of its name that the request carries.
pub type Set<'a> = [(&'a HeaderName, Option<&'a HeaderValue>)];

/// The request head as written on the wire: the request line, the fields `set`, the request's
/// own headers and, when the body's length is not among them, its framing. `body`: none, or
/// one of this length if known. Returns the head and whether the body goes chunked.
pub fn encode_head(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    set: &Set<'_>,
    body: Option<Option<u64>>,
) -> (Vec<u8>, bool) {
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut out = Vec::with_capacity(64 + target.len() + (headers.len() + set.len()) * 48);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let line = |out: &mut Vec<u8>, name: &HeaderName, value: &HeaderValue| {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    };
    for &(name, value) in set {
        if let Some(value) = value {
            line(&mut out, name, value);
        }
    }
    for (name, value) in headers {
        if !set.iter().any(|&(n, v)| v.is_some() && n == name) {
            line(&mut out, name, value);
        }
    }
    let mut chunked = false;
    if !headers.contains_key(header::CONTENT_LENGTH) {
        match body {
            Some(Some(n)) => out.extend_from_slice(format!("content-length: {n}\r\n").as_bytes()),
            Some(None) => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n");
                chunked = true;
            }
            None if expects_body(method) => out.extend_from_slice(b"content-length: 0\r\n"),
            None => {}
        }
    }
    out.extend_from_slice(b"\r\n");
    (out, chunked)
}

/// Methods whose requests usually carry a body: an empty one is said to be empty.
fn expects_body(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
}
