//! A client's request head, parsed for the gateway's own HTTP/1.1 path: a GET with no body, no
//! upgrade and no expectation becomes a request; anything else is left to hyper, which answers
//! what it refuses (400, 431) exactly as it always has.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Uri, Version};

use crate::body::{Body, empty};

/// The most header fields in a request head (hyper's default too).
const MAX_HEADERS: usize = 100;
/// Headers the gateway adds to a request before it goes to an instance (`X-Forwarded-For`,
/// `-Proto`, `-Host`, `X-Request-Id`, and `Host` if it had none).
const ADDED_UPSTREAM: usize = 5;

/// What the bytes at the start of a connection's buffer hold.
#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "moved once per request: a box would cost an allocation each")]
pub enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// A request this path serves, and whether the client asked to close after it.
    Request(Request<Body>, bool),
    /// Anything else: hyper takes the connection, these bytes included.
    Other,
}

/// Where a head's fields lie in it; kept by the connection, so that no request allocates one.
pub type Scratch = Vec<(Span, Span)>;

/// Parses the head at the start of `buf`; a complete one this path serves is taken out of it.
pub fn parse(buf: &mut BytesMut, spans: &mut Scratch) -> Parsed {
    let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len =
        match httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut req, buf, &mut fields)
        {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Parsed::Partial,
            Err(_) => return Parsed::Other,
        };
    if req.method != Some("GET") || req.version != Some(1) {
        return Parsed::Other;
    }
    let mut close = false;
    for field in req.headers.iter() {
        let is = |name: &str| field.name.eq_ignore_ascii_case(name);
        if is("content-length") || is("transfer-encoding") || is("upgrade") || is("expect") {
            return Parsed::Other;
        }
        if is("connection") {
            for token in field.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if !token.is_empty() && !token.eq_ignore_ascii_case(b"keep-alive") {
                    return Parsed::Other;
                }
            }
        }
    }
    // Offsets into the head, so that its bytes can be shared by the header values once taken
    // out of the buffer (no copy).
    let base = buf.as_ptr() as usize;
    let at = |s: &[u8]| (s.as_ptr() as usize - base, s.len());
    let target = req.path.map(|p| at(p.as_bytes()));
    spans.clear();
    spans.extend(req.headers.iter().map(|field| (at(field.name.as_bytes()), at(field.value))));
    let raw = buf.split_to(len).freeze();
    match build(&raw, target, spans) {
        Some(request) => Parsed::Request(request, close),
        None => {
            // hyper refuses what could not be built: it gets the head back.
            let mut back = BytesMut::with_capacity(raw.len() + buf.len());
            back.extend_from_slice(&raw);
            back.extend_from_slice(buf);
            *buf = back;
            Parsed::Other
        }
    }
}

pub type Span = (usize, usize);

fn slice(raw: &Bytes, (at, len): Span) -> Bytes {
    raw.slice(at..at + len)
}

/// The request, or `None` if its target or a header is not valid.
fn build(raw: &Bytes, target: Option<Span>, fields: &[(Span, Span)]) -> Option<Request<Body>> {
    let uri = Uri::from_maybe_shared(slice(raw, target?)).ok()?;
    // Adding the gateway's own headers never grows the map.
    let mut headers = crate::spare_maps::with_capacity(fields.len() + ADDED_UPSTREAM);
    for &(name, value) in fields {
        let name = HeaderName::from_bytes(&raw[name.0..name.0 + name.1]).ok()?;
        let value = HeaderValue::from_maybe_shared(slice(raw, value)).ok()?;
        headers.append(name, value);
    }
    let mut request = Request::new(empty());
    *request.method_mut() = Method::GET;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Some(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (Parsed, BytesMut) {
        let mut buf = BytesMut::from(text.as_bytes());
        (parse(&mut buf, &mut Scratch::new()), buf)
    }

    #[test]
    fn a_plain_get_is_taken_out_of_the_buffer_with_its_headers_and_the_next_request_stays() {
        let (p, rest) = parsed("GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Two: 1\r\nx-two: 2\r\n\r\nGET /next");
        let Parsed::Request(req, close) = p else { panic!("a request: {p:?}") };
        assert_eq!((req.uri().path(), req.uri().query(), close), ("/a", Some("b=1"), false));
        assert_eq!(req.headers().get_all("x-two").iter().count(), 2);
        assert_eq!(req.headers()["host"], "x");
        assert_eq!(&rest[..], b"GET /next");
    }

    #[test]
    fn connection_close_is_noted_and_other_connection_options_go_to_hyper() {
        let (p, _) = parsed("GET / HTTP/1.1\r\nhost: x\r\nconnection: Keep-Alive, close\r\n\r\n");
        assert!(matches!(p, Parsed::Request(_, true)), "{p:?}");
        let (p, rest) = parsed("GET / HTTP/1.1\r\nhost: x\r\nconnection: x-secret\r\n\r\n");
        assert!(matches!(p, Parsed::Other), "{p:?}");
        assert_eq!(rest.len(), 49, "the bytes stay for hyper");
    }

    #[test]
    fn bodies_upgrades_other_methods_and_versions_and_bad_heads_go_to_hyper_whole() {
        for text in [
            "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\na",
            "GET / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n\r\n",
            "HEAD / HTTP/1.1\r\nhost: x\r\n\r\n",
            "GET / HTTP/1.0\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "GET / HTTP/1.1\r\nbad name: x\r\n\r\n",
            "GET http://[::1 HTTP/1.1\r\nhost: x\r\n\r\n",
        ] {
            let (p, rest) = parsed(text);
            assert!(matches!(p, Parsed::Other), "{text:?}: {p:?}");
            assert_eq!(&rest[..], text.as_bytes(), "{text:?}: every byte stays for hyper");
        }
    }

    #[test]
    fn a_head_not_yet_whole_is_partial() {
        let (p, rest) = parsed("GET / HTTP/1.1\r\nhost: x\r\n");
        assert!(matches!(p, Parsed::Partial), "{p:?}");
        assert_eq!(rest.len(), 25);
    }
}
