//! An instance's answer body as it streams to the client, read from the connection as the
//! client takes it. At the body's end a reusable connection goes back to its pool; a body
//! dropped midway (the client left) drops its connection, whose state is then unknown.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf as _, Bytes};
use hyper::body::{Frame, SizeHint};

use super::conn::{Conn, Failure};
use super::framing::Framing;
use super::pool::Idle;

const READ_CHUNK: usize = 16 * 1024;
/// The most trailer bytes read (and dropped) after the last chunk.
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, Clone, Copy)]
enum State {
    /// Bytes left of a body of known length.
    Length(u64),
    /// Before a chunk's size line.
    ChunkSize,
    /// Bytes left of the current chunk.
    ChunkData(u64),
    /// The CRLF that ends a chunk's data.
    ChunkEnd,
    Trailers,
    /// Until the instance closes the connection.
    Close,
    Done,
}

/// The body of an answer still being read from its connection.
#[derive(Debug)]
pub struct Streaming {
    conn: Option<Conn>,
    state: State,
    reusable: bool,
    pool: Idle,
}

type Polled = Poll<Option<Result<Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>>>;

impl Streaming {
    pub fn new(conn: Conn, framing: Framing, reusable: bool, pool: Idle) -> Self {
        let state = match framing {
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::Close => State::Close,
        };
        Self { conn: Some(conn), state, reusable, pool }
    }

    /// Reads more into the buffer: `Ready(false)` when the connection ended.
    fn fill(conn: &mut Conn, cx: &mut Context<'_>) -> Poll<std::io::Result<bool>> {
        conn.buf.reserve(READ_CHUNK);
        let n = ready!(tokio_util::io::poll_read_buf(Pin::new(&mut conn.stream), cx, &mut conn.buf))?;
        Poll::Ready(Ok(n > 0))
    }

    /// The body has ended: its connection goes back to the pool if it can carry another
    /// exchange (nothing unasked-for after the answer).
    fn release(&mut self) {
        self.state = State::Done;
        if let Some(conn) = self.conn.take()
            && self.reusable
            && conn.buf.is_empty()
        {
            self.pool.put(conn);
        }
    }

    fn finish(&mut self) -> Polled {
        self.release();
        Poll::Ready(None)
    }

    /// The next step of the state machine over the buffered bytes: a frame, the end, or
    /// `None` when more bytes are needed.
    fn step(&mut self) -> Result<Option<Option<Bytes>>, Failure> {
        let Some(conn) = self.conn.as_mut() else { return Ok(Some(None)) };
        let buf = &mut conn.buf;
        loop {
            match self.state {
                State::Done => return Ok(Some(None)),
                State::Length(0) => return Ok(Some(None)),
                State::Length(left) | State::ChunkData(left) if !buf.is_empty() => {
                    let n = left.min(buf.len() as u64);
                    let data = buf.split_to(n as usize).freeze();
                    self.state = match self.state {
                        State::Length(_) => State::Length(left - n),
                        _ if left == n => State::ChunkEnd,
                        _ => State::ChunkData(left - n),
                    };
                    return Ok(Some(Some(data)));
                }
                State::Close if !buf.is_empty() => return Ok(Some(Some(buf.split().freeze()))),
                State::ChunkSize => match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        buf.advance(used);
                        self.state = if size == 0 { State::Trailers } else { State::ChunkData(size) };
                    }
                    Ok(httparse::Status::Partial) => return Ok(None),
                    Err(_) => return Err(Failure::Protocol("a bad chunk size")),
                },
                State::ChunkEnd if buf.len() >= 2 => {
                    if &buf[..2] != b"\r\n" {
                        return Err(Failure::Protocol("a chunk not ended by CRLF"));
                    }
                    buf.advance(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers => match buf.windows(2).position(|w| w == b"\r\n") {
                    Some(0) => {
                        buf.advance(2);
                        self.state = State::Done;
                    }
                    Some(end) => buf.advance(end + 2),
                    None if buf.len() > MAX_TRAILERS => {
                        return Err(Failure::Protocol("trailers over 16 KiB"));
                    }
                    None => return Ok(None),
                },
                _ => return Ok(None),
            }
        }
    }
}

impl hyper::body::Body for Streaming {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled {
        loop {
            match self.step() {
                Ok(Some(Some(data))) => {
                    // The last bytes of a body of known length: the client may never ask again.
                    if matches!(self.state, State::Length(0)) {
                        self.release();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Some(None)) => return self.finish(),
                Err(e) => {
                    self.conn = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
                Ok(None) => {}
            }
            let close_delimited = matches!(self.state, State::Close);
            let Some(conn) = self.conn.as_mut() else { return Poll::Ready(None) };
            match ready!(Self::fill(conn, cx)) {
                Ok(true) => {}
                Ok(false) if close_delimited => {
                    self.reusable = false;
                    return self.finish();
                }
                Ok(false) => {
                    self.conn = None;
                    return Poll::Ready(Some(Err(
                        Failure::Protocol("the connection ended inside the body").into()
                    )));
                }
                Err(e) => {
                    self.conn = None;
                    return Poll::Ready(Some(Err(Failure::Io(e).into())));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done | State::Length(0))
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(n) => SizeHint::with_exact(n),
            State::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}
