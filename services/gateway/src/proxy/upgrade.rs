//! Upgraded connections (WebSocket and any other `Upgrade:` protocol): the handshake is
//! forwarded, and once the instance answers 101 the two connections are joined byte for byte.

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::{Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt as _;

use super::{Body, empty};
use crate::upstream::{Conn, Upgraded, connection_has};

/// The protocol the client asks to upgrade to, and its side of the upgrade, if it asks.
pub fn requested(parts: &mut Parts) -> Option<(HeaderValue, OnUpgrade)> {
    // Without its side of an upgrade (the gateway's own HTTP/1.1 path, HTTP/2) no request can
    // be upgraded: its headers are not even looked at.
    parts.extensions.get::<OnUpgrade>()?;
    let wants = connection_has(&parts.headers, "upgrade");
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

/// Answers the client's 101 and, in the background, joins the two upgraded connections
/// (the instance's first bytes after its 101, if any, go to the client first).
pub fn tunnel(
    upstream: Response<Body>,
    protocol: HeaderValue,
    client_side: OnUpgrade,
    instance: SocketAddr,
) -> Response<Body> {
    let upstream_side = upstream.extensions().get::<Upgraded>().and_then(Upgraded::take);
    let mut res = Response::new(empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for (name, value) in upstream.headers() {
        if name != header::CONNECTION && name != header::UPGRADE {
            res.headers_mut().append(name, value.clone());
        }
    }
    ask(res.headers_mut(), protocol);
    let Some(Conn { stream: mut upstream, buf: early, .. }) = upstream_side else {
        tracing::warn!(%instance, "an upgrade answered without its connection");
        return res;
    };
    tokio::spawn(async move {
        let joined = async {
            let mut client = TokioIo::new(client_side.await.map_err(std::io::Error::other)?);
            client.write_all(&early).await?;
            tokio::io::copy_bidirectional(&mut client, &mut upstream).await
        };
        if let Err(error) = joined.await {
            tracing::debug!(%error, %instance, "upgraded connection ended with an error");
        }
    });
    res
}
