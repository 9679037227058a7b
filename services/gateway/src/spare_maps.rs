//! Header maps kept for reuse on the thread that dropped them. A map is made per proxied
//! request (the request as it goes upstream; the answer's starts empty, unallocated), and a
//! map for a dozen headers is over the size glibc's per-thread cache serves: each made and
//! dropped afresh costs an allocation and a free on glibc's slow path, with its bins
//! consolidated now and then. A map taken from here is empty and keeps the capacity it had.

use std::cell::RefCell;

use http::HeaderMap;

/// Spare maps kept per thread, at most: as many as requests one thread has in flight between
/// making a map and dropping it is plenty; past that a map is freed as usual.
const KEEP: usize = 64;
/// A map with room for more headers than this is freed, not kept (one odd request must not
/// pin a large map per thread).
const LARGEST: usize = 96;

thread_local! {
    static SPARE: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

/// An empty map with room for at least `capacity` headers.
pub fn with_capacity(capacity: usize) -> HeaderMap {
    match SPARE.with_borrow_mut(Vec::pop) {
        Some(mut map) => {
            map.reserve(capacity);
            map
        }
        None => HeaderMap::with_capacity(capacity),
    }
}

/// Keeps `map`'s storage for a later [`with_capacity`]; its headers are dropped now.
pub fn give_back(mut map: HeaderMap) {
    if map.capacity() == 0 || map.capacity() > LARGEST {
        return;
    }
    map.clear();
    SPARE.with_borrow_mut(|spare| {
        if spare.len() < KEEP {
            spare.push(map);
        }
    });
}

#[cfg(test)]
mod tests {
    use http::header::{HOST, HeaderValue};

    use super::*;

    #[test]
    fn a_map_given_back_comes_back_empty_with_its_room() {
        let mut map = with_capacity(12);
        map.insert(HOST, HeaderValue::from_static("example.com"));
        let room = map.capacity();
        give_back(map);
        let again = with_capacity(4);
        assert!(again.is_empty());
        assert_eq!(again.capacity(), room);
    }

    #[test]
    fn a_map_too_large_to_keep_is_freed() {
        give_back(HeaderMap::with_capacity(LARGEST * 2));
        assert!(with_capacity(1).capacity() <= LARGEST);
    }
}
