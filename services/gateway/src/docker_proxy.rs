//! `gateway docker-proxy`: the Docker engine's API for discovery only — read-only and
//! redacted — so the internet-facing gateway never holds the engine's socket.
//!
//! Docker's socket is root on the host, read-only mount or not: anyone who can write to it can
//! start a privileged container. This proxy runs in its own container, the only one given the
//! socket, on a network only the gateway joins. It forwards `GET`/`HEAD` of exactly what
//! discovery uses — `/_ping`, `/version`, `/containers/json`, `/containers/{id}/json` and
//! `/events` — and refuses everything else with 403. Container listings and inspections
//! are cut down to the fields discovery reads (`filter`): never a container's environment,
//! command or mounts, where secrets live.

mod command;
mod filter;

pub use command::main;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, UnixStream};

use crate::body::Body;

/// Largest listing or inspection read back from the engine.
const MAX_DOCUMENT: usize = 16 * 1024 * 1024;

/// What a path asks for, once its `/v1.NN` prefix is set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    Ping,
    Version,
    List,
    Inspect,
    Events,
}

/// The allowed call a method and path make, if any.
pub fn allowed(method: &Method, path: &str) -> Option<Allowed> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let path = match path.strip_prefix("/v1.") {
        Some(rest) => {
            let (version, rest) = rest.split_once('/')?;
            if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            format!("/{rest}")
        }
        None => path.to_string(),
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["_ping"] => Some(Allowed::Ping),
        ["version"] => Some(Allowed::Version),
        ["containers", "json"] => Some(Allowed::List),
        ["containers", id, "json"] if is_container_ref(id) => Some(Allowed::Inspect),
        ["events"] => Some(Allowed::Events),
        _ => None,
    }
}

/// A container id or name (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`, as Docker allows): no path tricks.
fn is_container_ref(s: &str) -> bool {
    s.len() <= 128
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Serves the proxy on `listener` until `shutdown`, forwarding to the engine at `socket`.
pub async fn serve(
    listener: TcpListener,
    socket: PathBuf,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let socket = Arc::new(socket);
    tracing::info!(addr = %listener.local_addr()?, socket = %socket.display(), "docker proxy listening (read-only, redacted)");
    tokio::pin!(shutdown);
    while let Some((stream, peer)) = crate::startup::next_connection(&listener, shutdown.as_mut()).await {
        let socket = socket.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(socket.clone(), req, peer));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(error) = builder.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(%error, %peer, "docker proxy connection ended with an error");
            }
        });
    }
    Ok(())
}

async fn handle(
    socket: Arc<PathBuf>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let Some(kind) = allowed(req.method(), req.uri().path()) else {
        tracing::warn!(method = %req.method(), path = req.uri().path(), %peer, "docker proxy refused a call");
        return Ok(answer(
            StatusCode::FORBIDDEN,
            "slipway docker-proxy: only listing, inspecting and watching containers is allowed",
        ));
    };
    match forward(&socket, req, kind).await {
        Ok(res) => Ok(res),
        Err(error) => {
            tracing::warn!(error = format!("{error:#}"), "docker proxy: the engine failed");
            Ok(answer(StatusCode::BAD_GATEWAY, "slipway docker-proxy: the engine did not answer"))
        }
    }
}

async fn forward(socket: &PathBuf, req: Request<Incoming>, kind: Allowed) -> anyhow::Result<Response<Body>> {
    let stream = UnixStream::connect(socket).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(error) = conn.await {
            tracing::debug!(%error, "docker proxy: engine connection ended");
        }
    });
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str()).to_string();
    let upstream = Request::builder()
        .method(req.method().clone())
        .uri(target)
        .header(header::HOST, "docker")
        .body(http_body_util::Empty::<Bytes>::new())?;
    let res = sender.send_request(upstream).await?;
    let (mut head, body) = res.into_parts();
    if !matches!(kind, Allowed::List | Allowed::Inspect) || !head.status.is_success() {
        return Ok(Response::from_parts(head, body.map_err(Into::into).boxed()));
    }
    let bytes = Limited::new(body, MAX_DOCUMENT).collect().await.map_err(|e| anyhow::anyhow!(e))?.to_bytes();
    let document: serde_json::Value = serde_json::from_slice(&bytes)?;
    let kept = match kind {
        Allowed::List => filter::listing(&document),
        _ => filter::inspection(&document),
    };
    let body = Bytes::from(serde_json::to_vec(&kept)?);
    head.headers.remove(header::CONTENT_LENGTH);
    head.headers.remove(header::TRANSFER_ENCODING);
    Ok(Response::from_parts(head, Full::new(body).map_err(|never| match never {}).boxed()))
}

fn answer(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut res = Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed());
    *res.status_mut() = status;
    res.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_discovery_reads_are_allowed() {
        let get = Method::GET;
        assert_eq!(allowed(&get, "/_ping"), Some(Allowed::Ping));
        assert_eq!(allowed(&get, "/v1.41/containers/json"), Some(Allowed::List));
        assert_eq!(allowed(&get, "/v1.41/containers/abc123/json"), Some(Allowed::Inspect));
        assert_eq!(allowed(&get, "/v1.45/events"), Some(Allowed::Events));
        for path in [
            "/v1.41/containers/abc/logs",
            "/v1.41/containers/abc/archive",
            "/v1.41/containers/../json",
            "/v1.41/images/json",
            "/v1.41/secrets",
            "/v1.x/containers/json",
            "/v1.41/containers/abc/json/extra",
        ] {
            assert_eq!(allowed(&get, path), None, "{path}");
        }
        assert_eq!(allowed(&Method::POST, "/v1.41/containers/create"), None);
        assert_eq!(allowed(&Method::DELETE, "/v1.41/containers/abc"), None);
        assert_eq!(allowed(&Method::POST, "/v1.41/containers/json"), None);
    }
}
