//! An idle timeout for client connections: one that moves no byte either way for the timeout is
//! closed — a silent client (slowloris), a kept-alive connection gone quiet, a dead WebSocket.
//! Progress only records the time; the timer is re-armed lazily when it fires, so the hot path
//! never touches the timer wheel. Bytes read ahead can be put back in front of the connection,
//! for hyper when the gateway hands it a connection whose next request it had begun to read.

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
    last: Instant,
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
            last: now,
            timer: Box::pin(tokio::time::sleep_until(now + timeout)),
            unread: Bytes::new(),
        }
    }

    /// Puts `read` back: the next reads return it before anything the connection brings.
    pub fn put_back(&mut self, read: Bytes) {
        self.unread = read;
    }

    /// On no progress: `Ready(TimedOut)` if idle for the whole timeout, else `Pending` with the
    /// timer armed for the remaining time.
    fn expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        // The timer keeps its old deadline while bytes flow; only when it fires is the time of
        // the last progress consulted, and the timer moved on if there was some.
        while self.timer.as_mut().poll(cx).is_ready() {
            let deadline = self.last + self.timeout;
            if deadline <= Instant::now() {
                return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "connection idle"));
            }
            self.timer.as_mut().reset(deadline);
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
                self.last = Instant::now();
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
            self.last = Instant::now();
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
            self.last = Instant::now();
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
}
