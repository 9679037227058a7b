//! A request body of unknown length (chunked), cut at the body limit, that remembers it was
//! cut so the client is answered 413 rather than whatever the instance made of half a body.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

use crate::body::Body;

pub struct Capped {
    inner: Body,
    left: usize,
    over: Arc<AtomicBool>,
}

/// What a cut body fails with.
#[derive(Debug, thiserror::Error)]
#[error("the request body is over the limit")]
pub struct OverLimit;

impl Capped {
    /// The body and the flag that is set if it goes over `limit` bytes.
    pub fn new(inner: Body, limit: usize) -> (Self, Arc<AtomicBool>) {
        let over = Arc::new(AtomicBool::new(false));
        (Self { inner, left: limit, over: over.clone() }, over)
    }
}

impl hyper::body::Body for Capped {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, Bytes::len);
                if len > self.left {
                    self.over.store(true, Ordering::Release);
                    return Poll::Ready(Some(Err(Box::new(OverLimit))));
                }
                self.left -= len;
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
