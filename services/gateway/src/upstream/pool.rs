//! Each instance's pool of kept-alive HTTP/1.1 connections, and one request's exchange on one
//! of them. A request takes an idle connection (or opens one) for itself; the connection goes
//! back once the answer's body has been read to its end, at once for an answer that came in
//! whole. No task is spawned per request or per connection.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{self, HeaderMap};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Body as _;
use tokio::time::Instant;

use super::answer::Streaming;
use super::conn::{Conn, Failure, Head, Set, encode_head};
use super::framing::{Framing, connection_has, idempotent};
use super::passed::Passed;
use crate::body::{Body, empty};

/// Idle connections kept per instance, at most.
const MAX_POOLED: usize = 512;

/// How long a connection may sit idle before the gateway closes it (nginx's upstream
/// keepalive_timeout is as long).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The idle connections of one instance and when each went idle, the most recently used last.
#[derive(Debug, Clone, Default)]
pub struct Idle(Arc<Mutex<VecDeque<(Conn, Instant)>>>);

impl Idle {
    /// The most recently used connection that is still open. The least recently used one is
    /// looked at too, and closed if its instance closed it, so that connections left over
    /// from a burst do not linger half-closed while traffic flows.
    fn take(&self) -> Option<Conn> {
        let mut idle = self.lock();
        if idle.front().is_some_and(|(c, _)| !c.is_idle_and_open()) {
            idle.pop_front();
        }
        while let Some((conn, _)) = idle.pop_back() {
            if conn.is_idle_and_open() {
                return Some(conn);
            }
        }
        None
    }

    pub fn put(&self, conn: Conn) {
        let mut idle = self.lock();
        if idle.len() < MAX_POOLED {
            idle.push_back((conn, Instant::now()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Conn, Instant)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug, Default)]
pub struct Pool {
    idle: Idle,
}

/// The instance's side of an accepted upgrade (its 101 answer's extension): the connection,
/// with whatever the instance sent after the 101.
#[derive(Debug, Clone)]
pub struct Upgraded(Arc<Mutex<Option<Conn>>>);

impl Upgraded {
    pub fn take(&self) -> Option<Conn> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl Pool {
    /// Closes the connections idle for longer than `timeout`, and those their instance closed;
    /// how many it closed. The instance's health checker calls it after each check, so idle
    /// connections go even when no request comes.
    pub fn close_idle(&self, timeout: Duration) -> usize {
        let mut idle = self.idle.lock();
        let before = idle.len();
        idle.retain(|(conn, since)| since.elapsed() < timeout && conn.is_idle_and_open());
        before - idle.len()
    }

    /// Sends `req`, with the fields `set` for this hop, to `addr` on an idle or new connection:
    /// the answer, and its header fields as they came unless they are in its map. A request
    /// with no body that may be repeated is sent again on a new connection if a kept-alive one
    /// turns out closed. The answer's head must come by `deadline` ([`Failure::TimedOut`]).
    pub async fn send(
        &self,
        addr: SocketAddr,
        req: Request<Body>,
        set: &Set<'_>,
        deadline: Instant,
    ) -> Result<(Response<Body>, Option<Passed>), Failure> {
        let (parts, body) = req.into_parts();
        let upgrade = asks_to_upgrade(&parts.headers);
        let has_body = !body.is_end_stream();
        let (head, chunked) = encode_head(
            &parts.method,
            &parts.uri,
            &parts.headers,
            set,
            has_body.then(|| body.size_hint().exact()),
        );
        crate::spare_maps::give_back(parts.headers);
        let repeatable = !has_body && idempotent(&parts.method);
        let mut body = has_body.then_some((body, chunked));
        let mut pooled = self.idle.take();
        loop {
            let reused = pooled.is_some();
            let mut conn = match pooled.take() {
                Some(conn) => conn,
                None => match tokio::time::timeout_at(deadline, Conn::connect(addr)).await {
                    Ok(conn) => conn?,
                    Err(_) => return Err(Failure::TimedOut),
                },
            };
            match conn.exchange(deadline, &head, body.take(), &parts.method, upgrade, reused).await {
                Ok(answer) => return Ok(self.response(conn, answer)),
                Err(Failure::Stale) if repeatable => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The answer for the proxy: its body whole if it came in with the head (the connection
    /// then back in the pool at once), else streaming from the connection; its fields apart
    /// (for an upgrade, in its map).
    fn response(&self, mut conn: Conn, head: Head) -> (Response<Body>, Option<Passed>) {
        // Its map starts empty and unallocated: the instance's fields travel apart ([`Passed`]),
        // and the gateway sets few of its own (HSTS, `Connection`), on few answers.
        let mut res = Response::new(empty());
        *res.status_mut() = head.status;
        if head.status == StatusCode::SWITCHING_PROTOCOLS {
            head.passed.append_to(res.headers_mut());
            res.extensions_mut().insert(Upgraded(Arc::new(Mutex::new(Some(conn)))));
            return (res, None);
        }
        *res.body_mut() = match head.framing {
            Framing::Length(n) if conn.buf.len() as u64 >= n => {
                let data = conn.buf.split_to(n as usize).freeze();
                if head.reusable && conn.buf.is_empty() {
                    self.idle.put(conn);
                }
                if data.is_empty() {
                    empty()
                } else {
                    Full::new(data).map_err(|never| match never {}).boxed()
                }
            }
            framing => Streaming::new(conn, framing, head.reusable, self.idle.clone()).boxed(),
        };
        (res, Some(head.passed))
    }
}

/// Whether the request asks the instance to upgrade the connection.
fn asks_to_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && connection_has(headers, "upgrade")
}

#[cfg(test)]
mod tests;
