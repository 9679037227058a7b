//! The request target and head, checked and normalised before routing: what the gateway
//! routes on (and decides `protected` by) must be what the instance will serve.

use std::borrow::Cow;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Version};

/// Why a request is refused before routing (400, or 431 for oversized headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Not an origin-form path (`/…`).
    NotOriginForm,
    /// `%2F`, `%5C`, `%2E` or `%00` in the path, or a backslash: a separator or dot that
    /// servers decode differently.
    EncodedSeparator,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// `..` above the root.
    AboveRoot,
    /// HTTP/1.1 without `Host` (RFC 9112 §3.2), or more than one `Host`.
    Host,
    /// A header line over [`MAX_HEADER_LINE`].
    HeaderTooLarge,
}

impl Malformed {
    pub fn title(self) -> &'static str {
        match self {
            Self::NotOriginForm => "The request target must be a path",
            Self::EncodedSeparator => "Encoded slashes, backslashes and dots are not accepted in paths",
            Self::BadEscape => "The path has a malformed percent-escape",
            Self::AboveRoot => "The path climbs above the root",
            Self::Host => "A request needs exactly one Host header",
            Self::HeaderTooLarge => "A request header is too large",
        }
    }
}

/// The longest header line accepted (name and value), as nginx's default buffers allow.
pub const MAX_HEADER_LINE: usize = 8 * 1024;

/// Checks the request head: one `Host` (required in HTTP/1.1 unless the target names the
/// authority), and no header line over [`MAX_HEADER_LINE`]. Returns the `Host` field.
pub fn check_head<B>(req: &Request<B>) -> Result<Option<&HeaderValue>, Malformed> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return Err(Malformed::Host);
    }
    if first.is_none() && req.version() == Version::HTTP_11 && req.uri().authority().is_none() {
        return Err(Malformed::Host);
    }
    if req.headers().iter().any(|(name, value)| name.as_str().len() + value.len() > MAX_HEADER_LINE) {
        return Err(Malformed::HeaderTooLarge);
    }
    Ok(first)
}

/// Removes header names with underscores, as nginx does by default: a server that folds `_`
/// into `-` (CGI, WSGI) would read `X_User_Id` as the `X-User-Id` the gateway vouches for.
pub fn drop_underscored(headers: &mut HeaderMap) {
    if !headers.keys().any(|k| k.as_str().contains('_')) {
        return;
    }
    let names: Vec<_> = headers.keys().filter(|k| k.as_str().contains('_')).cloned().collect();
    for name in names {
        headers.remove(name);
    }
}

/// The path with dot segments resolved (RFC 3986 §5.2.4) and empty segments collapsed;
/// borrowed when already normal. Escapes of `/`, `\`, `.` and NUL are refused, not decoded.
pub fn normalize(path: &str) -> Result<Cow<'_, str>, Malformed> {
    if !path.starts_with('/') {
        return Err(Malformed::NotOriginForm);
    }
    check_escapes(path)?;
    if !has_dot_or_empty_segment(path.as_bytes()) {
        return Ok(Cow::Borrowed(path));
    }
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    let mut trailing_slash = false;
    for (i, segment) in segments.into_iter().enumerate() {
        match segment {
            "" => trailing_slash = i == last,
            "." => trailing_slash = i == last,
            ".." => {
                out.pop().ok_or(Malformed::AboveRoot)?;
                trailing_slash = i == last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut normal = String::with_capacity(path.len());
    for s in &out {
        normal.push('/');
        normal.push_str(s);
    }
    if trailing_slash || out.is_empty() {
        normal.push('/');
    }
    Ok(Cow::Owned(normal))
}

/// Whether a path (`/…`) has a `.` or `..` segment or an empty one before a slash (`//`):
/// one byte scan, where `contains("//")` and `split('/')` each cost a searcher per request.
fn has_dot_or_empty_segment(path: &[u8]) -> bool {
    let mut segments = path[1..].split(|&b| b == b'/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if segment == b"." || segment == b".." || (segment.is_empty() && !last) {
            return true;
        }
    }
    false
}

fn check_escapes(path: &str) -> Result<(), Malformed> {
    let bytes = path.as_bytes();
    if bytes.contains(&b'\\') {
        return Err(Malformed::EncodedSeparator);
    }
    let mut i = 0;
    while let Some(at) = bytes[i..].iter().position(|b| *b == b'%') {
        let at = i + at;
        let (Some(hi), Some(lo)) = (bytes.get(at + 1), bytes.get(at + 2)) else {
            return Err(Malformed::BadEscape);
        };
        let (Some(hi), Some(lo)) = ((*hi as char).to_digit(16), (*lo as char).to_digit(16)) else {
            return Err(Malformed::BadEscape);
        };
        if matches!(hi * 16 + lo, 0x2f | 0x5c | 0x2e | 0x00) {
            return Err(Malformed::EncodedSeparator);
        }
        i = at + 3;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_and_empty_segments_are_resolved() {
        let cases = [
            ("/", "/"),
            ("/api/public/../admin", "/api/admin"),
            ("/api/./x", "/api/x"),
            ("//api//x", "/api/x"),
            ("/a/b/..", "/a/"),
            ("/a/.", "/a/"),
            ("/a/b/../..", "/"),
            ("/a/", "/a/"),
            ("/a%20b/c", "/a%20b/c"),
            ("/a/.b/..c/...", "/a/.b/..c/..."),
        ];
        for (raw, normal) in cases {
            assert_eq!(normalize(raw).as_deref(), Ok(normal), "{raw}");
        }
        for normal in ["/", "/already/normal", "/a/", "/.well-known/x", "/a..b"] {
            assert!(matches!(normalize(normal), Ok(Cow::Borrowed(_))), "{normal}");
        }
    }

    #[test]
    fn encoded_separators_climbing_and_bad_escapes_are_refused() {
        for raw in ["/api/public%2f..%2fadmin", "/api/%2e%2e/admin", "/a%2Fb", "/a\\b", "/a%00", "/a/%5c"] {
            assert_eq!(normalize(raw), Err(Malformed::EncodedSeparator), "{raw}");
        }
        assert_eq!(normalize("/.."), Err(Malformed::AboveRoot));
        assert_eq!(normalize("/a/../../b"), Err(Malformed::AboveRoot));
        assert_eq!(normalize("/a%2"), Err(Malformed::BadEscape));
        assert_eq!(normalize("/a%zz"), Err(Malformed::BadEscape));
        assert_eq!(normalize("*"), Err(Malformed::NotOriginForm));
    }

    #[test]
    fn underscored_header_names_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert("x_user_id", "forged".parse().expect("value"));
        h.insert("x-kept", "1".parse().expect("value"));
        drop_underscored(&mut h);
        assert!(h.get("x_user_id").is_none());
        assert_eq!(h["x-kept"], "1");
    }
}
