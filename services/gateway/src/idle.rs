//! An idle timeout for client connections: one that moves no byte either way for the timeout is
//! closed — a silent client (slowloris), a kept-alive connection gone quiet, a dead WebSocket.
//! Progress is only counted: the timer fires every quarter of the timeout and looks whether the
//! count moved, so the hot path reads no clock and never touches the timer wheel, and a quiet
//! connection is closed between one and one and a quarter timeouts after its last byte. Bytes
//! read ahead can be put back in front of the connection, for hyper when the gateway hands it
//! a connection whose next request it had begun to read.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf as _, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

#[derive(Debug)]
pub struct Idle<T> {
    inner: T,
    timeout: Duration,
    /// Reads and writes that completed: counted, not timed.
    progress: u64,
    /// `progress` when the timer last fired, and when it was last seen to have moved.
    seen: u64,
    quiet_since: Instant,
    timer: Pin<Box<Sleep>>,
    /// Bytes put back: read before the connection's own.
    unread: Bytes,
}

impl<T> Idle<T> {
    pub fn new(inner: T, timeout: Duration) -> Self {
        let now = Instant::now();
        Self {
            inner,
            timeout,
            progress: 0,
            seen: 0,
            quiet_since: now,
            timer: Box::pin(tokio::time::sleep_until(now + timeout / 4)),
            unread: Bytes::new(),
        }
    }

    /// Puts `read` back: the next reads return it before anything the connection brings.
    pub fn put_back(&mut self, read: Bytes) {
        self.unread = read;
    }

    /// On no progress: `Ready(TimedOut)` if idle for the whole timeout, else `Pending` with the
    /// timer armed for the next look.
    fn expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        while self.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            if self.progress != self.seen {
                self.seen = self.progress;
                self.quiet_since = now;
            } else if now >= self.quiet_since + self.timeout {
                return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "connection idle"));
            }
            self.timer.as_mut().reset(now + self.timeout / 4);
        }
        Poll::Pending
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Idle<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.unread.is_empty() {
            let n = self.unread.len().min(buf.remaining());
            buf.put_slice(&self.unread[..n]);
            self.unread.advance(n);
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                self.progress += 1;
                Poll::Ready(r)
            }
            Poll::Pending => self.expired(cx).map(Err),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Idle<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if r.is_ready() {
            self.progress += 1;
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if r.is_ready() {
            self.progress += 1;
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test]
    async fn bytes_put_back_are_read_first_then_the_connection_s() {
        let (mut near, far) = tokio::io::duplex(64);
        near.write_all(b" world").await.expect("write");
        drop(near);
        let mut conn = Idle::new(far, Duration::from_secs(5));
        conn.put_back(Bytes::from_static(b"hello"));
        let mut all = String::new();
        conn.read_to_string(&mut all).await.expect("read");
        assert_eq!(all, "hello world");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_closed_a_timeout_after_its_last_byte_and_not_while_bytes_flow() {
        let (mut near, far) = tokio::io::duplex(64);
        let mut conn = Idle::new(far, Duration::from_secs(60));
        let start = Instant::now();
        // A byte every 40 s for 320 s: never 60 s quiet. The task keeps `near` open after.
        let writer = tokio::spawn(async move {
            for _ in 0..8 {
                tokio::time::sleep(Duration::from_secs(40)).await;
                near.write_all(b"x").await.expect("write");
            }
            near
        });
        let mut bytes = 0;
        let error = loop {
            match conn.read(&mut [0_u8; 8]).await {
                Ok(n) => bytes += n,
                Err(error) => break error,
            }
        };
        assert_eq!((bytes, error.kind()), (8, io::ErrorKind::TimedOut));
        let quiet = start.elapsed() - Duration::from_secs(320);
        assert!(quiet >= Duration::from_secs(60) && quiet <= Duration::from_secs(75), "{quiet:?}");
        drop(writer);
    }
}
