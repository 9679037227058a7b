//! Each instance's pool of HTTP/1 connections. A request takes a connection that is idle, or
//! opens one; the connection goes back into the pool at once and is taken again only once its
//! previous exchange has finished. No task is spawned per request.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::Body;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection: nothing was sent, so any request may go to another instance.
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error(transparent)]
    Http(hyper::Error),
}

/// Idle connections kept per instance, at most.
const MAX_POOLED: usize = 512;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
pub struct Pool {
    connections: Mutex<Vec<SendRequest<Body>>>,
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Body>, SendError> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(SendError::Connect(e)),
        Err(_) => return Err(SendError::Connect(std::io::ErrorKind::TimedOut.into())),
    };
    let _ = stream.set_nodelay(true);
    let (sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(SendError::Http)?;
    tokio::spawn(async move {
        if let Err(error) = conn.with_upgrades().await {
            tracing::debug!(%error, instance = %addr, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

impl Pool {
    fn take(&self) -> Option<SendRequest<Body>> {
        let mut pooled = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        pooled.retain(|s| !s.is_closed());
        let ready = pooled.iter().rposition(SendRequest::is_ready)?;
        Some(pooled.swap_remove(ready))
    }

    fn put(&self, sender: SendRequest<Body>) {
        let mut pooled = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        if pooled.len() < MAX_POOLED {
            pooled.push(sender);
        }
    }

    /// Sends `req` to `addr` on a pooled or new connection. A request a pooled connection could
    /// not take (it closed meanwhile) is sent again on another.
    pub async fn send(
        &self,
        addr: SocketAddr,
        mut req: Request<Body>,
    ) -> Result<Response<Incoming>, SendError> {
        loop {
            let (mut sender, fresh) = match self.take() {
                Some(s) => (s, false),
                None => (connect(addr).await?, true),
            };
            let answer = sender.try_send_request(req);
            self.put(sender);
            match answer.await {
                Ok(res) => return Ok(res),
                Err(mut e) => match e.take_message() {
                    Some(unsent) if !fresh => req = unsent,
                    _ => return Err(SendError::Http(e.into_error())),
                },
            }
        }
    }
}
