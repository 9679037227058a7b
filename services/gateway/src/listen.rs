//! The gateway's sockets: public listeners that a successor can share (SO_REUSEPORT), opened
//! for connections only once the gateway is warm, and the admin API on a Unix socket that
//! only its own container reaches.
//!
//! This is how a gateway is replaced without refusing a connection: the new one joins the
//! old one's network namespace and binds the same port, takes connections once its routes
//! and their health are known, and the old one then stops accepting. With
//! `net.ipv4.tcp_migrate_req=1` the kernel hands the connections still queued at the old
//! listener to the new one instead of resetting them.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;

use axum::Router;
use tokio::net::{TcpListener, TcpSocket, UnixListener};

/// Connections queued before they are accepted.
const BACKLOG: u32 = 1024;

/// A public socket: bound (its port is known) and, once opened, listening.
#[derive(Debug)]
pub enum Socket {
    Bound(TcpSocket),
    Listening(TcpListener),
}

impl Socket {
    /// Binds `addr`; with `shared`, another process of the same user may bind it too and
    /// the kernel spreads new connections over both.
    pub fn bind(addr: SocketAddr, shared: bool) -> anyhow::Result<Self> {
        let bound = (|| {
            let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
            socket.set_reuseaddr(true)?;
            if shared {
                socket.set_reuseport(true)?;
            }
            socket.bind(addr)?;
            Ok::<_, io::Error>(socket)
        })();
        bound
            .map(Socket::Bound)
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e} (is another process using the port?)"))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Socket::Bound(s) => s.local_addr(),
            Socket::Listening(l) => l.local_addr(),
        }
    }

    /// Starts taking connections.
    pub fn open(self) -> io::Result<TcpListener> {
        match self {
            Socket::Bound(s) => s.listen(BACKLOG),
            Socket::Listening(l) => Ok(l),
        }
    }
}

/// Serves `router` on a Unix socket at `path` until `stopped` (a stale socket left by an
/// earlier run in the same container is replaced).
pub fn serve_admin_socket(
    path: &Path,
    router: Router,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| anyhow::anyhow!("cannot listen on the admin socket {}: {e}", path.display()))?;
    tracing::info!(socket = %path.display(), "admin listening");
    Ok(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(stopped).await {
            tracing::warn!(%error, "admin socket stopped");
        }
    }))
}

/// `gateway hold`: does nothing until SIGTERM or SIGINT. The container running it owns the
/// network namespace and the published ports that successive gateways share.
pub fn hold() -> std::process::ExitCode {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => {
            rt.block_on(async { kit::server::shutdown_signal().await });
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gateway hold: cannot start the async runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
