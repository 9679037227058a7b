//! Upgraded connections (WebSocket and any other `Upgrade:` protocol): the handshake is
//! forwarded, and once the instance answers 101 the two connections are joined byte for byte.

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::{Response, StatusCode};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::{Body, empty};

/// The protocol the client asks to upgrade to, and its side of the upgrade, if it asks.
pub fn requested(parts: &mut Parts) -> Option<(HeaderValue, OnUpgrade)> {
    let wants = parts
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    let protocol = parts.headers.get(header::UPGRADE).cloned()?;
    if !wants {
        return None;
    }
    Some((protocol, parts.extensions.remove::<OnUpgrade>()?))
}

/// Puts the upgrade request back after the hop-by-hop headers were removed.
pub fn ask(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, protocol);
}

/// Answers the client's 101 and, in the background, joins the two upgraded connections.
pub fn tunnel(
    mut upstream: Response<Incoming>,
    protocol: HeaderValue,
    client_side: OnUpgrade,
    instance: SocketAddr,
) -> Response<Body> {
    let upstream_side = hyper::upgrade::on(&mut upstream);
    let mut res = Response::new(empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for (name, value) in upstream.headers() {
        if name != header::CONNECTION && name != header::UPGRADE {
            res.headers_mut().append(name, value.clone());
        }
    }
    ask(res.headers_mut(), protocol);
    tokio::spawn(async move {
        match tokio::try_join!(client_side, upstream_side) {
            Ok((client, upstream)) => {
                let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
                if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                    tracing::debug!(%error, %instance, "upgraded connection ended with an error");
                }
            }
            Err(error) => tracing::warn!(%error, %instance, "upgrade failed"),
        }
    });
    res
}
