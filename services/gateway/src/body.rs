//! The body type requests and responses carry through the gateway, both ways, and its empty
//! value: a leaf every other module may use without depending on the request path.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty};

/// Bodies both ways: what a body can fail with includes going over the size limit.
pub type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}
