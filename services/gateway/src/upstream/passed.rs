//! An answer's header fields kept as the instance sent them (less its hop-by-hop ones): spans
//! of the received head, not a header map. The gateway's own HTTP/1.1 path writes them out as
//! they came, so the fields of nearly every answer are never parsed into names and values,
//! hashed and dropped again; hyper's path gets them in the response's map ([`Passed::append_to`]).
//! They travel beside the response, not in its extensions: those cost a map per answer.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};

type Span = (u32, u32);

/// The fields, in the order they came. They go with a response whose header map holds the
/// fields the gateway sets itself, which take precedence.
#[derive(Debug, Clone)]
pub struct Passed {
    raw: Bytes,
    fields: Vec<(Span, Span)>,
}

/// Where a head's fields lie in it: taken while the head is still being parsed in a buffer,
/// before it is split off (see [`Passed::with`]).
#[derive(Debug)]
pub struct Spans(Vec<(Span, Span)>);

impl Spans {
    /// The spans of fields that are slices of `head`, each a name and a value that httparse
    /// has checked.
    pub fn of<'a>(head: &[u8], fields: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Self {
        let base = head.as_ptr() as usize;
        let span = |s: &[u8]| {
            let at = s.as_ptr() as usize - base;
            (at as u32, (at + s.len()) as u32)
        };
        Self(fields.map(|(name, value)| (span(name), span(value))).collect())
    }
}

impl Passed {
    /// Fields that are slices of `raw`, each a name and a value that httparse has checked.
    pub fn new<'a>(raw: &Bytes, fields: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Self {
        Self::with(raw.clone(), Spans::of(raw, fields))
    }

    /// The fields `spans` found in a head whose bytes `raw` now holds.
    pub fn with(raw: Bytes, spans: Spans) -> Self {
        debug_assert!(spans.0.iter().all(|&(_, (_, end))| end as usize <= raw.len()));
        Self { raw, fields: spans.0 }
    }

    /// Each field's name (as sent: any case) and value.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let at = |(from, to): Span| &self.raw[from as usize..to as usize];
        self.fields.iter().map(move |&(name, value)| (at(name), at(value)))
    }

    /// The values of the fields named `name` (lowercase).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v)
    }

    /// Drops the fields whose name `unwanted` says yes to.
    pub fn remove_if(&mut self, mut unwanted: impl FnMut(&[u8]) -> bool) {
        let raw = &self.raw;
        self.fields.retain(|&(name, _)| !unwanted(&raw[name.0 as usize..name.1 as usize]));
    }

    /// The fields whose name `headers` lacks: the gateway's own fields, in its map, replace
    /// the instance's of the same name.
    pub fn not_in<'a, 'h>(
        &'a self,
        headers: &'h HeaderMap,
    ) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + use<'a, 'h> {
        self.iter()
            .filter(|(name, _)| !headers.keys().any(|set| name.eq_ignore_ascii_case(set.as_str().as_bytes())))
    }

    /// Appends to `headers` the fields it lacks (see [`Passed::not_in`]).
    pub fn append_to(&self, headers: &mut HeaderMap) {
        let unset: Vec<(&[u8], &[u8])> = self.not_in(headers).collect();
        for (name, value) in unset {
            let name = HeaderName::from_bytes(name);
            let value = HeaderValue::from_maybe_shared(self.raw.slice_ref(value));
            if let (Ok(name), Ok(value)) = (name, value) {
                headers.append(name, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields of `head` (`name: value` lines), as parse_head keeps them.
    fn passed(head: &'static str) -> Passed {
        let raw = Bytes::from_static(head.as_bytes());
        let fields = head.split("\r\n").filter_map(|line| line.split_once(": "));
        Passed::new(&raw, fields.map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    #[test]
    fn fields_keep_their_order_case_and_repeats_and_can_be_dropped_by_name() {
        let mut p = passed("Set-Cookie: a=1\r\nX-Hop: 1\r\nset-cookie: b=2\r\nContent-Length: 5");
        assert_eq!(p.values("set-cookie").collect::<Vec<_>>(), [b"a=1", b"b=2"]);
        assert_eq!(p.values("content-length").collect::<Vec<_>>(), [b"5"]);
        p.remove_if(|name| name.eq_ignore_ascii_case(b"x-hop"));
        let names: Vec<&[u8]> = p.iter().map(|(n, _)| n).collect();
        assert_eq!(names, [&b"Set-Cookie"[..], b"set-cookie", b"Content-Length"]);
    }

    #[test]
    fn into_a_map_the_gateway_s_own_fields_win_and_the_rest_are_appended() {
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", HeaderValue::from_static("gateway"));
        passed("X-Request-Id: instance\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2").append_to(&mut headers);
        assert_eq!(headers.get_all("x-request-id").iter().collect::<Vec<_>>(), ["gateway"]);
        assert_eq!(headers.get_all("set-cookie").iter().collect::<Vec<_>>(), ["a=1", "b=2"]);
    }
}
