//! Client connections. A plain connection is served by the gateway's own HTTP/1.1 loop while
//! its requests are GETs with no body and no upgrade (nearly all of a site's traffic): each
//! head is parsed, proxied and answered in the connection's task with none of a general
//! server's per-request machinery. The first request that is anything else (HTTP/2's preface,
//! a body, an upgrade, HTTP/1.0, a head to refuse) hands the connection, with the bytes
//! already read, to hyper for the rest of its life. TLS connections go to hyper from the start.

mod answer;
mod head;

use std::future::Future as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use http_body_util::BodyExt as _;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::Watcher;
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::idle::Idle;
use crate::proxy::{Peer, Proxy};
use head::Parsed;

/// The largest request head accepted, in bytes (hyper answers 431 past it).
pub const MAX_HEAD: usize = 32 * 1024;
const READ_CHUNK: usize = 8 * 1024;

/// A client connection, plain or TLS, as hyper gets it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// What every connection of a listener shares.
pub struct Served {
    pub proxy: Arc<Proxy>,
    pub hyper: auto::Builder<TokioExecutor>,
    pub tls: Option<TlsAcceptor>,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// Cancelled when the gateway stops: a connection waiting for its next request closes.
    pub closing: CancellationToken,
}

impl Served {
    /// Serves one accepted connection to its end. `watcher` keeps the gateway's shutdown
    /// waiting for it.
    pub async fn connection(self: Arc<Self>, stream: TcpStream, peer: SocketAddr, watcher: Watcher) {
        let stream = Idle::new(stream, self.idle_timeout);
        let Some(acceptor) = &self.tls else {
            return self.plain(stream, peer, watcher).await;
        };
        match tokio::time::timeout(self.header_timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => self.hyper(Box::new(tls), Peer::new(peer), watcher).await,
            Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    }

    /// The gateway's own HTTP/1.1 loop, until the connection ends or hyper takes it.
    async fn plain(&self, mut io: Idle<TcpStream>, peer: SocketAddr, watcher: Watcher) {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let mut out = Vec::with_capacity(1024);
        let mut spans = head::Scratch::new();
        let client = Peer::new(peer);
        // One wait for the stop per connection, polled once: that registers the task's waker.
        // Later wake-ups only ask the token whether it fired (polling the wait again would
        // take its waiters' lock and compare wakers, once per request).
        let closing = self.closing.cancelled();
        tokio::pin!(closing);
        let mut watching = false;
        loop {
            if buf.is_empty() {
                if buf.capacity() < READ_CHUNK / 2 {
                    buf.reserve(READ_CHUNK);
                }
                let read = std::future::poll_fn(|cx| {
                    if let Poll::Ready(read) = tokio_util::io::poll_read_buf(Pin::new(&mut io), cx, &mut buf)
                    {
                        return Poll::Ready(Some(read));
                    }
                    let stopped = if watching {
                        self.closing.is_cancelled()
                    } else {
                        watching = true;
                        closing.as_mut().poll(cx).is_ready()
                    };
                    if stopped { Poll::Ready(None) } else { Poll::Pending }
                })
                .await;
                if !matches!(read, Some(Ok(n)) if n > 0) {
                    return;
                }
            }
            // A head that came whole costs no timer; one still coming must end in time.
            let parsed = match head::parse(&mut buf, &mut spans) {
                Parsed::Partial => {
                    let rest = rest_of_head(&mut io, &mut buf, &mut spans);
                    match tokio::time::timeout(self.header_timeout, rest).await {
                        Ok(Some(parsed)) => parsed,
                        Ok(None) | Err(_) => return,
                    }
                }
                parsed => parsed,
            };
            let (req, close) = match parsed {
                Parsed::Request(req, close) => (req, close),
                Parsed::Partial | Parsed::Other => {
                    io.put_back(buf.freeze());
                    return self.hyper(Box::new(io), client, watcher).await;
                }
            };
            let answer = self.proxy.clone().answer(req, &client, false).await;
            match answer::write(&mut io, answer, &mut out, close).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => return tracing::debug!(%error, %peer, "writing an answer failed"),
            }
        }
    }

    /// hyper serves the connection (HTTP/1.1 or HTTP/2, upgrades included) to its end.
    async fn hyper(&self, io: Box<dyn Io>, client: Peer, watcher: Watcher) {
        let https = self.tls.is_some();
        let proxy = self.proxy.clone();
        let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
            proxy.clone().handle(req.map(|b| b.map_err(Into::into).boxed()), client.clone(), https)
        });
        let conn = self.hyper.serve_connection_with_upgrades(TokioIo::new(io), service).into_owned();
        if let Err(error) = watcher.watch(conn).await {
            tracing::debug!(%error, "connection ended with an error");
        }
    }
}

/// Reads until the head at the start of `buf` is whole (or is one hyper must see); `None` if
/// the connection ends first.
async fn rest_of_head(
    io: &mut Idle<TcpStream>,
    buf: &mut BytesMut,
    spans: &mut head::Scratch,
) -> Option<Parsed> {
    loop {
        if buf.len() >= MAX_HEAD {
            return Some(Parsed::Other);
        }
        buf.reserve(READ_CHUNK);
        match io.read_buf(buf).await {
            Ok(n) if n > 0 => {}
            _ => return None,
        }
        match head::parse(buf, spans) {
            Parsed::Partial => {}
            parsed => return Some(parsed),
        }
    }
}
